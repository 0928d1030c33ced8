"""``python train/train.py -c CONF [the original's flags] [--set key=value] [--device auto|cpu|cuda[:N]]``.

Several GPUs: ``torchrun --nproc_per_node=N train/train.py -c CONF …`` (the original's
``python -m torch.distributed.launch … --launcher=pytorch`` sets the same variables and keeps working).
"""

from __future__ import annotations

import sys

import torch

from mononerf.config import load_config
from mononerf.errors import MonoNeRFError, report
from mononerf.train import distributed


def parameter_checksum(model: torch.nn.Module) -> float:
    """Sum of every trainable-head parameter, printed by each rank of a distributed run to show they agree."""
    with torch.no_grad():
        return float(sum(p.double().sum() for n, p in model.named_parameters() if n.startswith("mlp_")))


def evaluate_only(cfg, info) -> int:
    """``--eval_only``: the run's newest checkpoint, its multi-view dump (the views of ``--protocol``: every training
    camera at every time, as ``i_testset_all``, or camera 0 at every time) and its scores against ``multiview_GT``;
    nothing is trained."""
    from mononerf.data.dataset import resolve_scene_dirs
    from mononerf.eval.evaluate import evaluate_run
    from mononerf.eval.video import load_run, render_mode
    from mononerf.pipeline.pipeline import run_folder

    run_dir = run_folder(cfg, info.world_size)
    trainer, step = load_run(run_dir, cfg.run.device)
    if not info.is_main:
        return 0
    protocol = str(cfg.run.protocol)
    folder = render_mode(trainer, step, "multiview", progress=True, protocol=protocol)
    print(f"[eval_only] {run_dir} at step {step}: the multi-view dump ({protocol} protocol) is in {folder}")
    evaluate_run(folder, resolve_scene_dirs(cfg.info.dataset_file_lists, cfg.train.datadir), evaldir=cfg.info.evaldir,
                 protocol=protocol)
    return 0


def main(argv: list[str] | None = None) -> int:
    info = None  # SIGINT and SIGTERM: the trainer saves the last step and stops (mononerf/train/interrupts.py)
    trainer = None
    try:
        cfg = load_config(argv)
        info = distributed.init(cfg.run.device, master_addr=cfg.run.master_addr, master_port=cfg.run.master_port)
        if cfg.run.eval_only:
            return evaluate_only(cfg, info)
        if info.is_main and info.device.type == "cpu" and cfg.run.device == "auto":
            print("notice: no CUDA device found, training on the CPU (slow at the released configs' size)")
        from mononerf.eval import renders
        from mononerf.train.trainer import Trainer

        trainer = Trainer(cfg, info, renders=renders)  # the periodic test-set / video / multi-view renders
        trainer.fit()
        if info.enabled:
            # one write per line: the ranks share the terminal
            sys.stdout.write(f"rank {info.rank}: parameter checksum {parameter_checksum(trainer.model):.10e}\n")
            sys.stdout.flush()
        if info.is_main:
            print(f"done: run folder {trainer.run_dir} (checkpoints *.tar, config.conf, train.log); "
                  f"tensorboard --logdir {trainer.run_dir / 'tensorboard'}")
        return 0
    except (MonoNeRFError, OSError) as exc:  # one line, exit status 2
        return report(exc)
    except KeyboardInterrupt as exc:
        # the trainer said what it saved; before it existed there was nothing to save
        print("stopped" if trainer is not None else "stopped while starting: nothing was trained", file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)  # 130 for SIGINT, 143 for SIGTERM
    finally:
        if info is not None:
            distributed.shutdown(info)
