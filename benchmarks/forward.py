"""Forward+backward benchmark of the model alone: rays/s and peak memory of one full dynamic render pass
(joint pass + t±1 passes) and its backward, without losses, sampling or the optimiser.

    .venv/bin/python benchmarks/forward.py [--rays-per-scene 512] [--samples 64] [--steps 3] [--profile] [...]

Default: the released multi-scene configuration with info.N_rand = 1024 (512 rays per scene, 2 synthetic scenes
at the real scenes' size), random encoder weights.
"""

from __future__ import annotations

import time

import numpy as np

from _common import arguments, build_trainer, peak_mb, profile_table, reset_peak, sync
from mononerf.render.images import prepare_rays


def main() -> None:
    a = arguments(__doc__, rays_per_scene=512).parse_args()
    tr = build_trainer(a)
    dev = tr.device
    tr.encode()
    tr._stage_modules("dynamic")
    rng = np.random.RandomState(0)
    d = tr.data

    def step():
        batch = d.sample_rays(rng, tr.plan.n_rand, tr.plan.frames[0][0])
        rays = prepare_rays(batch.rays_o, batch.rays_d, d.camera)
        ret = tr.renderer(rays, batch.time, True)
        (ret["rgb_map_full"].sum() + ret["rgb_map_d_f"].sum() + ret["sceneflow_f"].abs().sum()).backward()

    step()
    sync(dev)
    reset_peak(dev)
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync(dev)
    dt = (time.perf_counter() - t0) / a.steps
    rays = d.num_scenes * tr.plan.n_rand
    print(f"forward+backward: {dt:.3f} s per {rays} rays ({rays / dt:.0f} rays/s), peak memory {peak_mb(dev):.0f} MiB")
    if a.profile:
        print(profile_table(dev, step))


if __name__ == "__main__":
    main()
