"""Drivers above training and evaluation: the paper's three claims in one command (:mod:`~mononerf.experiments.claims`,
its report :mod:`~mononerf.experiments.report`) and the training recipe's ablation (:mod:`~mononerf.experiments.ablation`).
They train runs, then hand each run's :class:`~mononerf.pipeline.pipeline.Pipeline` to the renders, evaluation and
edits."""
