"""Render time against the number of rays: seconds per frame of a short video at 1, 1/2 and 1/4 of the training size.

    .venv/bin/python benchmarks/render_scaling.py [--size 320x180] [--samples 8] [--video-frames 6] [--times 2]

Default: the synthetic multi-scene configuration on the synthetic scenes a and b at the demo's size (160x90 training
images), random encoder weights, the render commands' path (``renders.render_video``: one ``render_views`` call per
frame, every scene in it). The video holds ``--video-frames`` frames at each of ``--times`` times (spiral cameras),
so the per-time work (feature maps projected and resized once per time) is shared by the frames of that time, as in
``--mode fixed-time`` / ``spiral``. A frame 4x smaller (``--downscale 2``) should cost at most 1/3 of the time.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import arguments, build_trainer, load_note, sync
import torch  # after _common, which imports mononerf first (the allocator option)

from mononerf.eval import renders  # noqa: E402
from mononerf.geometry.poses import frame_time  # noqa: E402


def main() -> None:
    p = arguments(__doc__, rays_per_scene=64)
    p.set_defaults(conf="mononerf_conf/exp/synthetic/multiscene.conf", size="320x180", samples=8)
    p.add_argument("--video-frames", type=int, default=6, help="frames rendered at each time")
    p.add_argument("--times", type=int, default=2, help="distinct times of the video")
    p.add_argument("--downscales", default="1,2,4")
    a = p.parse_args()
    tr = build_trainer(a)
    tr.encode()
    d = tr.data
    S = d.num_scenes
    n_views = d.render_poses.shape[1]
    cams, times = [], []
    for k in range(a.times):
        e = round(k * (d.num_frames - 1) / max(1, a.times - 1))
        for j in range(a.video_frames):
            cams.append(d.render_poses[:, (k * a.video_frames + j) % n_views, :, :4])
            times.append(frame_time(e, d.num_frames))
    results = {}
    with torch.inference_mode(), tempfile.TemporaryDirectory() as tmp:
        renders.render_video(tr, cams[:1], times[:1], Path(tmp) / "warm", downscale=4)  # warm-up
        for ds in (int(v) for v in a.downscales.split(",")):
            tr.renderer._projected = []  # each size starts with nothing projected
            sync(tr.device)
            t0 = time.perf_counter()
            renders.render_video(tr, cams, times, Path(tmp) / f"ds{ds}", downscale=ds)
            sync(tr.device)
            dt = (time.perf_counter() - t0) / len(cams)
            results[ds] = dt
            W, H = renders.render_camera(tr, ds).size
            print(f"downscale {ds}: {W}x{H}, {dt:.2f} s per frame ({S} scenes in one call, {a.samples} samples, "
                  f"{len(cams)} frames at {a.times} times)", flush=True)
    base = results.get(1)
    if base:
        for ds, dt in results.items():
            if ds != 1:
                print(f"  1/{ds * ds} of the pixels: {dt / base:.2f} of the time")
    print(load_note())


if __name__ == "__main__":
    main()
