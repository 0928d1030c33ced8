"""A dynamic training step on a trained run's weights, with IEEE denormal numbers and with them flushed to zero
(``run.flush_denormal``; docs/training.md, "Denormal numbers").

    .venv/bin/python benchmarks/denormals.py RUN_DIR [--checkpoints 000100.tar,000299.tar] [--steps 4]

RUN_DIR: a run folder (its ``config.conf`` and checkpoints; e.g. the demo's
``logs/synthetic/1gpussynthetic_a_synthetic_b``). Each checkpoint's weights take the same step (learning rate 0:
the weights do not move) alternately without and with the flush, twice; each line names the seconds per step.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import mononerf  # noqa: E402,F401  (before torch: the allocator option)
import torch  # noqa: E402

from mononerf.config import load_config  # noqa: E402
from mononerf.train.trainer import Trainer  # noqa: E402
from mononerf.utils.cpu import flush_denormals  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--checkpoints", default="000100.tar,000299.tar")
    p.add_argument("--steps", type=int, default=4)
    a = p.parse_args()
    tr = Trainer(load_config(["-c", str(a.run_dir / "config.conf"), "--device", "cpu",
                              "--set", "info.basedir=/tmp/denormal_bench/"]), progress=False)
    tr.encode()
    step_fn = tr.pipeline.step_module()
    opt = torch.optim.SGD(tr._stage_modules("dynamic"), lr=0.0)
    print(f"{a.run_dir}, {torch.get_num_threads()} threads", flush=True)
    for name in a.checkpoints.split(","):
        tr.pipeline.load(a.run_dir / name)
        for flush in (False, True, False, True):
            flush_denormals(flush)
            tr._train_step("dynamic", 1, step_fn, opt)  # warm-up
            t0 = time.perf_counter()
            for _ in range(a.steps):
                tr._train_step("dynamic", 1, step_fn, opt)
            dt = (time.perf_counter() - t0) / a.steps
            print(f"{name}: {'flushed' if flush else 'IEEE   '} {dt:.3f} s/step", flush=True)
    flush_denormals(False)


if __name__ == "__main__":
    main()
