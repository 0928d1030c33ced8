"""Synthetic dynamic scene generator: writes a scene folder in the original's on-disk format (method.md §1.1).

    python -m mononerf.data.synthetic --out data/NAME [--preset a|b|c] [--frames N] [--size WxH] [--seed S]
        [--format llff|nerfies|iphone]

The clip is rendered by :mod:`mononerf.data.synthetic_render` (numpy ray casting, no weights, no downloads).
``--format nerfies|iphone`` writes the same scene in the Nerfies / DyCheck iPhone layout instead
(:mod:`mononerf.data.synthetic_formats`); the LLFF layout, the default, is:

- ``poses_bounds.npy`` (N, 17) float64: per frame [R | t | hwf] row-major in LLFF column order [down, right, back]
  (= OpenGL [-up, right, back]), hwf = (H, W, focal) at full resolution, then near/far = min/max true depth.
- ``images/NNN.png`` full res and ``images_2/NNN.png`` = ``images[::2, ::2]`` (exact: integer pixels, method.md §8.15).
- ``disp/NNN.npy`` float32 (H/2, W/2) = 1 / depth; ``motion_masks/NNN.png`` uint8 255 on the moving objects.
- ``flow/NNN_fwd.npz`` (i < N-1) and ``flow/NNN_bwd.npz`` (i > 0): keys ``flow`` (H/2, W/2, 2) float32 [dx, dy] in
  images_2 pixels and ``mask`` (H/2, W/2) bool (the point lands inside the other frame and is visible there).
- ``multiview_GT/{t:08d}/cam{p:02d}.jpg`` (1-based): camera p-1 at time t-1, full res, JPEG 95 (method.md §6.1).
- ``video.mp4`` (the images/ frames, libx264 yuv420p, 10 fps) and ``synthetic.json`` (ground truth metadata).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

from mononerf.data.synthetic_render import (
    PRESETS, Layer, Scene, build_scene, composite, moved, render_layer, seen_from, surface_points,
)
from mononerf.data.synthetic_formats import FORMATS, shift_principal_point, write_capture
from mononerf.errors import MonoNeRFError
from mononerf.utils.images import to_uint8, write_image
from mononerf.utils.video import write_video

MIN_SIZE = 32  # smallest full-resolution width/height
MAX_FRAMES = 999  # file names are %03d
JPEG_QUALITY = 95
VIDEO_FPS = 10
OUR_DIRS = ("images", "images_2", "disp", "motion_masks", "flow", "multiview_GT", "multiview_masks")
OUR_FILES = ("poses_bounds.npy", "video.mp4", "synthetic.json")
CAPTURE_DIRS = ("camera", "rgb", "depth", "covisible", "splits")  # the Nerfies / iPhone layouts' own
CAPTURE_FILES = ("dataset.json", "metadata.json", "scene.json", "extra.json")


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"WxH"`` into (W, H); raises MonoNeRFError on anything else."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise MonoNeRFError(f"--size must look like WIDTHxHEIGHT (e.g. 320x180), got {text!r}")
    return int(parts[0]), int(parts[1])


def _validate(preset: str, frames: int, size: tuple[int, int], seed: int) -> tuple[int, int]:
    if preset not in PRESETS:
        raise MonoNeRFError(f"unknown preset {preset!r}; expected one of {list(PRESETS)}")
    if not isinstance(frames, (int, np.integer)) or not 3 <= frames <= MAX_FRAMES:
        raise MonoNeRFError(f"frames must be an integer in [3, {MAX_FRAMES}], got {frames!r}")
    if len(size) != 2:
        raise MonoNeRFError(f"size must be (width, height), got {size!r}")
    w, h = (int(v) for v in size)
    if w < MIN_SIZE or h < MIN_SIZE:
        raise MonoNeRFError(f"size {w}x{h} is too small: width and height must be at least {MIN_SIZE}")
    if w % 2 or h % 2:
        raise MonoNeRFError(f"size {w}x{h} must have an even width and height (images_2/ is exactly half size)")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MonoNeRFError(f"seed must be a non-negative integer, got {seed!r}")
    return w, h


def _prepare_out(out: Path, make: bool = True) -> None:
    """Create ``out``; clear our own outputs of an earlier synthetic scene (of any layout); refuse any other
    non-empty folder. ``make``: create the LLFF layout's folders."""
    if out.exists() and not out.is_dir():
        raise MonoNeRFError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "synthetic.json").is_file():
            raise MonoNeRFError(f"--out {out} is a non-empty folder without synthetic.json; refusing to overwrite "
                                "what may be a real scene (choose a new or empty folder)")
        for name in OUR_DIRS + CAPTURE_DIRS:
            shutil.rmtree(out / name, ignore_errors=True)
        for name in OUR_FILES + CAPTURE_FILES:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    for name in OUR_DIRS if make else ():
        (out / name).mkdir(parents=True, exist_ok=True)


def save_npz_deterministic(path: Path, **arrays: np.ndarray) -> None:
    """Like ``np.savez`` (uncompressed, readable by ``np.load``) but byte-identical for identical arrays
    (``np.savez`` stamps the current time into the zip entries)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, val in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(val), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())


def _half(layer: Layer) -> Layer:
    return Layer(layer.depth[::2, ::2], layer.prim[::2, ::2], layer.rgb[::2, ::2])


def scene_flow(scene: Scene, half: list[Layer], src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth optical flow from frame ``src`` to ``dst`` at half resolution.

    Each pixel's surface point (from its depth) is moved with its primitive from time ``src`` to ``dst`` (static
    points stay), projected into camera ``dst``; flow = projection - pixel. The mask keeps points that land inside
    the image (within the bilinear-sampling range [0, W/2-1] x [0, H/2-1]) and are visible there: the depth of
    ``dst`` at the nearest pixel agrees within ``VISIBILITY_TOL`` (relative). Returns flow (H2, W2, 2) float32 and
    mask (H2, W2) bool.
    """
    f2 = scene.focal / 2
    layer = half[src]
    pts, finite = surface_points(layer.depth, scene.c2w[src], f2)  # (H2, W2, 3) world at time src
    px, py, ok, mask = seen_from(moved(scene, pts, layer.prim, src, dst), finite, scene.c2w[dst], f2,
                                 half[dst].depth)
    xs, ys = np.meshgrid(np.arange(px.shape[1]), np.arange(px.shape[0]), indexing="xy")
    flow = np.where(ok[..., None], np.stack([px - xs, py - ys], axis=-1), 0.0).astype(np.float32)
    return flow, mask


def llff_poses_bounds(c2w: np.ndarray, height: int, width: int, focal: float, bounds: np.ndarray) -> np.ndarray:
    """(T, 17) LLFF rows from OpenGL c2w (T, 4, 4) [right, up, back] → [down, right, back] = [-up, right, back],
    hwf = (H, W, focal), then (near, far) from ``bounds`` (T, 2) (method.md §1.1)."""
    rot = c2w[:, :3, :3]
    llff = np.concatenate([-rot[:, :, 1:2], rot[:, :, 0:1], rot[:, :, 2:3], c2w[:, :3, 3:4],
                           np.broadcast_to(np.array([height, width, focal], dtype=np.float64)[None, :, None],
                                           (c2w.shape[0], 3, 1))], axis=2)
    return np.concatenate([llff.reshape(-1, 15), bounds], axis=1).astype(np.float64)


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit="frame", leave=False)


def generate_scene(out_dir, preset: str = "a", frames: int = 12, size: tuple[int, int] = (320, 180), seed: int = 0,
                   progress: bool = False, fmt: str = "llff", principal_shift: int = 0) -> dict:
    """Render and write a synthetic dynamic scene into ``out_dir`` (format in the module docstring; ``fmt``
    ``nerfies`` or ``iphone``: the same scene in that layout, :mod:`mononerf.data.synthetic_formats`).

    Args:
        out_dir: target folder; created if missing; an earlier synthetic scene there is replaced; a non-empty folder
            without ``synthetic.json`` is refused.
        preset: "a", "b" or "c" (different layouts, textures and motions).
        frames: number of frames N (3..999). size: full-resolution (W, H), both even and >= 32.
        seed: non-negative; the scene is deterministic per (preset, seed, frames, size).
        progress: show a tqdm bar over frames.
        principal_shift: nerfies / iphone: a training camera whose principal point is this many pixels (of the 2x
            frames) right of the centre (:func:`~mononerf.data.synthetic_formats.shift_principal_point`).

    Returns:
        small metadata dict: out_dir, preset, seed, frames, size, size_half, focal, seconds.

    Raises:
        MonoNeRFError: bad arguments or a refused output folder.
    """
    t0 = time.perf_counter()
    w, h = _validate(preset, frames, size, seed)
    if fmt not in FORMATS:
        raise MonoNeRFError(f"unknown --format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if principal_shift and fmt == "llff":
        raise MonoNeRFError("--principal-shift needs --format nerfies or iphone (an LLFF camera is centred)")
    out = Path(out_dir)
    _prepare_out(out, make=fmt == "llff")
    if fmt == "llff":
        scene, depths = _render_llff(out, preset, frames, w, h, seed, progress)
    else:  # the LLFF scene in a sibling folder first, then its other layout (synthetic_formats.py)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.resolve().parent))
        try:
            for name in OUR_DIRS:
                (staging / name).mkdir()
            scene, depths = _render_llff(staging, preset, frames, w, h, seed, progress)
            write_capture(staging, out, scene, fmt, depths)
            if principal_shift:
                shift_principal_point(out, int(principal_shift))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return {"out_dir": str(out), "preset": preset, "seed": int(seed), "frames": scene.frames, "size": (w, h),
            "size_half": (w // 2, h // 2), "focal": scene.focal, "seconds": time.perf_counter() - t0, "format": fmt}


def _render_llff(out: Path, preset: str, frames: int, w: int, h: int, seed: int, progress: bool):
    """Render the scene and write its LLFF layout into the prepared folder ``out``; returns the renderer's scene
    and the full-resolution depth of each training frame."""
    scene = build_scene(preset, int(frames), w, h, int(seed))
    n = scene.frames
    moving = [k for k, p in enumerate(scene.primitives) if p.moving]
    static = [k for k, p in enumerate(scene.primitives) if not p.moving]

    statics = [render_layer(scene.primitives, 0, scene.c2w[p], w, h, scene.focal, static) for p in range(n)]
    diag: list[Layer] = []
    for t in _progress(range(n), progress, "render"):
        gt_dir = out / "multiview_GT" / f"{t + 1:08d}"
        mask_dir = out / "multiview_masks" / f"{t + 1:08d}"  # dynamic-region evaluation (not in the real dataset)
        gt_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        for p in range(n):
            layer = composite(statics[p], render_layer(scene.primitives, t, scene.c2w[p], w, h, scene.focal, moving))
            rgb8 = to_uint8(layer.rgb)
            write_image(gt_dir / f"cam{p + 1:02d}.jpg", rgb8, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            write_image(mask_dir / f"cam{p + 1:02d}.png",
                         np.where(np.isin(layer.prim, moving), 255, 0).astype(np.uint8))
            if p == t:
                diag.append(layer)
    if not all(np.isfinite(layer.depth).all() for layer in diag):
        raise MonoNeRFError(f"internal error: preset {preset!r} leaves pixels with no surface")

    images = []
    for i, layer in enumerate(diag):
        rgb8 = to_uint8(layer.rgb)
        images.append(rgb8)
        write_image(out / "images" / f"{i:03d}.png", rgb8)
        write_image(out / "images_2" / f"{i:03d}.png", rgb8[::2, ::2])
        np.save(out / "disp" / f"{i:03d}.npy", (1.0 / layer.depth[::2, ::2]).astype(np.float32))
        write_image(out / "motion_masks" / f"{i:03d}.png",
                   np.where(np.isin(layer.prim[::2, ::2], moving), 255, 0).astype(np.uint8))

    half = [_half(layer) for layer in diag]
    for i in _progress(range(n), progress, "flow"):
        if i < n - 1:
            flow, mask = scene_flow(scene, half, i, i + 1)
            save_npz_deterministic(out / "flow" / f"{i:03d}_fwd.npz", flow=flow, mask=mask)
        if i > 0:
            flow, mask = scene_flow(scene, half, i, i - 1)
            save_npz_deterministic(out / "flow" / f"{i:03d}_bwd.npz", flow=flow, mask=mask)

    bounds = np.array([[layer.depth.min(), layer.depth.max()] for layer in diag], dtype=np.float64)
    np.save(out / "poses_bounds.npy", llff_poses_bounds(scene.c2w, h, w, scene.focal, bounds))
    write_video(out / "video.mp4", images, fps=VIDEO_FPS)

    meta = {
        "generator": "mononerf.data.synthetic", "preset": preset, "seed": int(seed), "frames": n,
        "size": [w, h], "size_half": [w // 2, h // 2], "focal": scene.focal, "focal_half": scene.focal / 2,
        "near_far": bounds.tolist(),
        "conventions": {
            "c2w": "OpenGL camera-to-world (columns right, up, back; camera looks along -z)",
            "pixel_ray": "[(x - W/2)/f, -(y - H/2)/f, -1] for integer pixel (x, y); depth = distance along -z",
            "poses_bounds": "LLFF columns [down, right, back] = [-up, right, back], hwf = (H, W, focal) full res",
            "flow": "images_2 pixels, [dx, dy]; fwd i -> i+1, bwd i -> i-1",
            "near_far": "min / max true depth of each full-resolution frame",
        },
        "c2w": scene.c2w.tolist(),
        "primitives": [p.describe() for p in scene.primitives],
        "moving_objects": [{"name": p.name, "obj2world": p.obj2world.tolist()}
                           for p in scene.primitives if p.moving],
        "static_obj2world": {p.name: p.obj2world[0].tolist() for p in scene.primitives if not p.moving},
    }
    (out / "synthetic.json").write_text(json.dumps(meta, indent=1))
    return scene, [layer.depth for layer in diag]


if __name__ == "__main__":  # python -m mononerf.data.synthetic: the command is in mononerf/data/cli.py
    from mononerf.data.cli import synthetic_main

    sys.exit(synthetic_main())
