"""A run without its training: the :class:`~mononerf.pipeline.pipeline.Pipeline` (scenes, model, renderer, encoded
features, the step's losses), its checkpoints and its feature cache. Training (``mononerf.train``) holds a Pipeline;
evaluation, edits and the viewer build one from a run folder without a Trainer."""
