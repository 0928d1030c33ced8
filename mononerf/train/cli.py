"""``python train/train.py -c CONF [the original's flags] [--set key=value] [--device auto|cpu|cuda[:N]]``.

Several GPUs: ``torchrun --nproc_per_node=N train/train.py -c CONF …`` (the original's
``python -m torch.distributed.launch … --launcher=pytorch`` sets the same variables and keeps working).
"""

from __future__ import annotations

import sys

import torch

from mononerf.config import load_config
from mononerf.errors import MonoNeRFError, os_error, report
from mononerf.train import distributed


def parameter_checksum(model: torch.nn.Module) -> float:
    """Sum of every trainable-head parameter, printed by each rank of a distributed run to show they agree."""
    with torch.no_grad():
        return float(sum(p.double().sum() for n, p in model.named_parameters() if n.startswith("mlp_")))


def main(argv: list[str] | None = None) -> int:
    info = None  # SIGINT and SIGTERM: the trainer saves the last step and stops (mononerf/train/interrupts.py)
    try:
        cfg = load_config(argv)
        info = distributed.init(cfg.run.device)
        if info.is_main and info.device.type == "cpu" and cfg.run.device == "auto":
            print("notice: no CUDA device found, training on the CPU (slow at the released configs' size)")
        from mononerf.train.trainer import Trainer

        trainer = Trainer(cfg, info)
        trainer.fit()
        if info.enabled:
            # one write per line: the ranks share the terminal
            sys.stdout.write(f"rank {info.rank}: parameter checksum {parameter_checksum(trainer.model):.10e}\n")
            sys.stdout.flush()
        if info.is_main:
            print(f"done: run folder {trainer.run_dir} (checkpoints *.tar, config.conf, train.log); "
                  f"tensorboard --logdir {trainer.run_dir / 'tensorboard'}")
        return 0
    except MonoNeRFError as exc:
        return report(exc)
    except OSError as exc:  # a log, image or video write of the run failed: say which, not a traceback
        return report(os_error(exc))
    except KeyboardInterrupt as exc:
        print("stopped", file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)  # 130 for SIGINT, 143 for SIGTERM
    finally:
        if info is not None:
            distributed.shutdown(info)
