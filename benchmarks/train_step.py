"""Training-step benchmark: iterations/s, rays/s and peak memory of the static and dynamic training steps.

    .venv/bin/python benchmarks/train_step.py [--rays-per-scene 256] [--samples 64] [--steps 3] [--profile]
        [--stages static,dynamic] [--activation-checkpointing]
        [--conf CONF] [--device auto|cpu|cuda] [--size 960x540] [--set key=value ...]

Default: the released multi-scene configuration (Balloon1_Balloon2, discrete2/addition) on the synthetic scenes
a and b generated into benchmarks/out/ at the real scenes' size (480x270 training images, 12 frames), random
encoder weights. A step = ray sampling, render, every loss, backward, optimiser step (as in training).
``--profile`` adds the top operations of one dynamic step.
"""

from __future__ import annotations

import time

from _common import (arguments, build_trainer, held_mb, load_note, peak_mb, profile_table, reset_peak, rss_mb,
                     speed_context, sync)
import torch  # after _common, which imports mononerf first (the allocator option)


def main() -> None:
    p = arguments(__doc__, rays_per_scene=256)
    p.add_argument("--stages", default="static,dynamic", help="comma-separated: static, dynamic")
    a = p.parse_args()
    tr = build_trainer(a)
    dev = tr.device
    with speed_context(a, dev):
        measure(tr, a, dev)


def measure(tr, a, dev) -> None:
    reset_peak(dev)
    t0 = time.perf_counter()
    tr.encode()
    sync(dev)
    print(f"encode: {time.perf_counter() - t0:.2f} s, peak memory {peak_mb(dev):.0f} MiB, features held "
          f"{held_mb(tr.renderer.features):.0f} MiB, process resident after it {rss_mb():.0f} MiB", flush=True)
    step_fn = tr.pipeline.step_module()  # what Trainer.train steps with
    for stage in a.stages.split(","):
        opt = torch.optim.Adam(tr._stage_modules(stage), lr=5e-4)
        tr._train_step(stage, 0, step_fn, opt)  # warm-up
        sync(dev)
        reset_peak(dev)
        t0 = time.perf_counter()
        for i in range(a.steps):
            tr._train_step(stage, i + 1, step_fn, opt)
        sync(dev)
        dt = (time.perf_counter() - t0) / a.steps
        rays = tr.data.num_scenes * tr.plan.n_rand
        print(f"{stage} step: {dt:.3f} s/it ({1 / dt:.2f} it/s, {rays / dt:.0f} rays/s), "
              f"peak memory {peak_mb(dev):.0f} MiB; {load_note()}", flush=True)
    if a.profile:
        opt = torch.optim.Adam(tr._stage_modules("dynamic"), lr=5e-4)
        print(profile_table(dev, lambda: tr._train_step("dynamic", 99, step_fn, opt)))


if __name__ == "__main__":
    main()
