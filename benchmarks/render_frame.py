"""Full-frame render benchmark: seconds per 270x480 frame (test-time render: joint pass at time t, no
perturbation, no noise, under ``torch.inference_mode``, network calls of ``train.netchunk // S`` points).

    .venv/bin/python benchmarks/render_frame.py [--rows 16 | --full] [--samples 64] [--chunk N] [--profile] [...]

Default: the released multi-scene configuration on 2 synthetic scenes at the real scenes' size, random weights.
Every scene of the model renders its frame in the same call (as the original's ``render_path``); the figure is per
scene-frame. Without ``--full`` a band of ``--rows`` full-width rows is rendered (same per-ray cost: the per-ray
work does not depend on where the pixel is) and the frame time is extrapolated from it — the line says so.
"""

from __future__ import annotations

import time

from _common import arguments, build_trainer, load_note, peak_mb, profile_table, reset_peak, speed_context, sync
import torch  # after _common, which imports mononerf first (the allocator option)


def main() -> None:
    p = arguments(__doc__, rays_per_scene=256)
    p.add_argument("--rows", type=int, default=16, help="rows of the frame to render (ignored with --full)")
    p.add_argument("--full", action="store_true", help="render the whole frame")
    p.add_argument("--chunk", type=int, default=None, help="rays per scene per render call (default info.chunk)")
    p.add_argument("--repeat", type=int, default=1,
                   help="render the frame this many times: the first, and the mean of the others (a video's frames)")
    a = p.parse_args()
    tr = build_trainer(a)
    with speed_context(a, tr.device):
        measure(tr, a)


def measure(tr, a) -> None:
    dev, d = tr.device, tr.data
    tr.encode()
    S, H, W = d.num_scenes, d.height, d.width
    rows = H if a.full else min(a.rows, H)
    c2w = d.poses[:, 0, :, :4].to(dev)
    t = torch.full((S,), -1.0, device=dev)
    chunk = a.chunk or int(tr.cfg.info.chunk)
    # the top rows of the training camera (its principal point kept)
    tr.renderer.render_views(c2w, t, d.camera._replace(height=2), chunk=chunk)  # warm-up
    sync(dev)
    reset_peak(dev)
    times = []
    for _ in range(max(1, a.repeat)):
        t0 = time.perf_counter()
        out = tr.renderer.render_views(c2w, t, d.camera._replace(height=rows), chunk=chunk)
        sync(dev)
        times.append(time.perf_counter() - t0)
    dt = times[0] if len(times) == 1 else sum(times[1:]) / (len(times) - 1)
    assert out["rgb_map_full"].shape[:3] == (S, rows, W)
    per_frame = dt / S * H / rows
    how = "measured" if rows == H else f"extrapolated from {rows} of {H} rows ({rows * W} rays per scene)"
    if len(times) > 1:
        how += (f"; mean of renders 2-{len(times)}, the first took {times[0] / S * H / rows:.1f} s "
                f"(each: {', '.join(f'{x / S * H / rows:.2f}' for x in times)})")
    print(f"render: {rows * W * S / dt:.0f} rays/s; {per_frame:.1f} s per {W}x{H} frame and scene ({how}); "
          f"peak memory {peak_mb(dev):.0f} MiB; chunk {chunk} rays, {tr.renderer.settings.netchunk // S} points "
          f"per network call; {load_note()}")
    if a.profile:
        top = d.camera._replace(height=min(rows, 2))
        print(profile_table(dev, lambda: tr.renderer.render_views(c2w, t, top, chunk=chunk)))


if __name__ == "__main__":
    main()
