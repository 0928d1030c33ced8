"""Check scenes and summarise them: what ``python -m mononerf.data DIR [DIR ...]`` (:mod:`mononerf.data.cli`) prints
about a new dataset.

``--picture FILE`` also writes, for a few frames of each scene as the training loader reads them, a strip
frame | disparity | forward flow | motion mask (red) — a look at what preprocessing made before training on it.
"""

from __future__ import annotations


import numpy as np

from mononerf.data.scene import Scene
from mononerf.geometry import poses as P


def scene_summary(scene: Scene) -> dict:
    """Numbers a user checks before training: frames, size, bounds, focal, dynamic share, flow validity."""
    valid_f = scene.flow_fwd_mask[:-1].mean() if scene.num_frames > 1 else 0.0
    valid_b = scene.flow_bwd_mask[1:].mean() if scene.num_frames > 1 else 0.0
    return {
        "name": scene.name,
        "format": scene.format,
        "frames": scene.num_frames,
        "size": f"{scene.width}x{scene.height}",
        "focal": round(scene.focal, 3),
        "intrinsics": tuple(round(v, 3) for v in scene.frame_intrinsics),
        "near": round(float(scene.bds[:, 0].min()), 4),
        "far": round(float(scene.bds[:, 1].max()), 4),
        "dynamic_share": round(float(scene.motion_masks.mean()), 4),
        "flow_valid_fwd": round(float(valid_f), 4),
        "flow_valid_bwd": round(float(valid_b), 4),
        "disp_range": (round(float(scene.disp.min()), 4), round(float(scene.disp.max()), 4)),
        "validation_views": len(scene.eval_views),
        "view_spread_deg": round(P.view_spread(scene.poses), 1),
        "resampled_frames": scene.resampled_frames,
    }


def format_summary(s: dict) -> str:
    return (f"{s['name']} ({s['format']}): {s['frames']} frames {s['size']}, focal {s['focal']}, bounds [{s['near']}, {s['far']}] "
            f"(scaled), dynamic pixels {100 * s['dynamic_share']:.1f}%, valid flow fwd {100 * s['flow_valid_fwd']:.1f}% "
            f"/ bwd {100 * s['flow_valid_bwd']:.1f}%, disparity [{s['disp_range'][0]}, {s['disp_range'][1]}]"
            + (f", {s['validation_views']} validation views" if s["validation_views"] else "")
            + f", cameras within {s['view_spread_deg']} deg of their average view"
            + ("" if s["view_spread_deg"] <= P.FORWARD_FACING_DEG else " (not forward-facing: train it with "
               "--world_rays auto or --no_ndc)")
            + _off_centre(s)
            + (f", {s['resampled_frames']} frames resampled (undistorted or onto the first frame's camera; "
               "docs/datasets.md)" if s["resampled_frames"] else ""))


def _off_centre(s: dict) -> str:
    """The camera's fy and principal point where they are not LLFF's (fx, W/2, H/2)."""
    fx, fy, cx, cy = s["intrinsics"]
    w, h = (int(v) for v in s["size"].split("x"))
    dx, dy = cx - w / 2, cy - h / 2
    if fx == fy and abs(dx) < 1e-3 and abs(dy) < 1e-3:
        return ""
    return f", fy {fy}, principal point ({cx}, {cy}) ({dx:+.3g}, {dy:+.3g} px from the centre)"


def check_dynamic_sampling(scene: Scene, rays_per_scene: int) -> list[str]:
    """Warnings for frames where the original's ray sampler could not draw half its rays from static pixels."""
    warnings = []
    for t in range(scene.num_frames):
        n_static = int((scene.static_masks[t] >= 0.5).sum())
        if n_static < rays_per_scene:
            warnings.append(f"{scene.name} frame {t}: only {n_static} static pixels (< {rays_per_scene} rays per scene)")
    return warnings


def scene_strip(scene: Scene, frames: int = 4) -> np.ndarray:
    """(rows·H, 4·W, 3) uint8: for ``frames`` frames spread over the clip, frame | disparity (inferno, 1st–99th
    percentile of the clip) | forward flow (colour wheel; the last frame's backward) | frame with the motion mask in
    red."""
    import cv2

    from mononerf.utils.flowviz import flow_to_rgb

    picks = sorted({int(round(x)) for x in np.linspace(0, scene.num_frames - 1, min(frames, scene.num_frames))})
    lo, hi = np.percentile(scene.disp, (1, 99))
    rows = []
    for t in picks:
        rgb = (np.clip(scene.images[t], 0, 1) * 255).round().astype(np.uint8)
        disp = np.clip((scene.disp[t] - lo) / max(hi - lo, 1e-12), 0, 1)
        disp = cv2.applyColorMap((disp * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]
        flow = scene.flow_fwd[t] if t < scene.num_frames - 1 else scene.flow_bwd[t]
        moving = scene.motion_masks[t] > 0.5
        overlay = rgb.copy()
        overlay[moving] = (0.45 * overlay[moving] + [140, 0, 0]).astype(np.uint8)
        rows.append(np.concatenate([rgb, disp, flow_to_rgb(flow), overlay], 1))
    return np.concatenate(rows, 0)
