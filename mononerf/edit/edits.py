"""Dynamic-scene edits of a trained run (the paper's editing results): what to render (:class:`EditSpec`), its frames
(:func:`edit_frames`), the emptiness check of the dynamic part and the video. How each edit composes the fields:
:mod:`mononerf.edit.fields`; the command: ``python -m mononerf.edit`` (mononerf/edit/cli.py)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from mononerf.errors import MonoNeRFError
from mononerf.geometry.poses import frame_time

EDITS = ("compose", "remove-dynamic", "retime")
DEFAULT_FPS = 4.0  # the original's video rate for 12-frame scenes: one source frame per 0.25 s
# a dynamic part whose blending weight stays below this on every rendered pixel is empty: an edit of it looks like
# the unedited scene (after the released collapse the weight is ~1e-3 everywhere; a learnt part is ~0.9 on the object)
EMPTY_BLEND = 0.1


@dataclass
class EditSpec:
    """What to render: static part of ``static_scene``; dynamic part of ``dynamic_scene`` (None: removed), played at
    ``speed`` or frozen at frame ``freeze``; camera ``camera`` (``view`` for ``fixed``)."""

    kind: str
    static_scene: int
    dynamic_scene: int | None
    speed: float = 1.0
    freeze: float | None = None
    camera: str = "track"
    view: int = 0

    def slug(self, names: list[str]) -> str:
        a = names[self.static_scene]
        if self.kind == "compose":
            return f"compose_{a}+{names[self.dynamic_scene]}"
        if self.kind == "remove-dynamic":
            return f"remove-dynamic_{a}"
        return f"retime_{a}_" + (f"freeze{self.freeze:g}" if self.freeze is not None else f"speed{self.speed:g}")


def in_group(pipeline, spec: EditSpec) -> tuple[object, EditSpec]:
    """The pipeline of the group of scenes of one size and length that holds the edit's scenes, and the spec in its
    numbering (a run whose scenes all match: unchanged). Parts of scenes of different sizes or lengths are refused."""
    if len(getattr(pipeline, "groups", [pipeline])) == 1:
        return pipeline, spec
    pipeline = getattr(pipeline, "pipeline", pipeline)  # a Trainer's
    part, a = pipeline.for_scene(spec.static_scene)
    b = None
    if spec.dynamic_scene is not None:
        part_d, b = pipeline.for_scene(spec.dynamic_scene)
        if part_d is not part:
            names = pipeline.data.names
            raise MonoNeRFError(f"{names[spec.static_scene]} and {names[spec.dynamic_scene]} differ in size or "
                                "length: an edit combines the parts of two scenes of one size and length")
    return part, replace(spec, static_scene=a, dynamic_scene=b)


def edit_frames(pipeline, spec: EditSpec, downscale: int = 1, progress: bool = False) -> list[dict]:
    """Render an edit: per output frame the maps of :func:`~mononerf.edit.fields.render_edit` for one scene
    ((H, W) / (H, W, 3) tensors on the CPU: ``rgb_map_full`` is the edited image)."""
    from mononerf.edit.fields import dynamic_field, edited_joint_fn, render_edit, static_field
    from mononerf.edit.paths import camera_path, playback_ticks
    from mononerf.eval.renders import render_camera

    pipeline, spec = in_group(pipeline, spec)
    d = pipeline.data
    n = d.num_frames
    if spec.kind != "remove-dynamic" and not pipeline.renderer.settings.dynerf_blending:
        raise MonoNeRFError(f"{spec.kind} takes the blending from the dynamic head: it needs train.DyNeRF_blending "
                            "= true (every released config)")
    if spec.freeze is not None and not 0 <= spec.freeze <= n - 1:
        raise MonoNeRFError(f"--freeze {spec.freeze:g} is not a time of these scenes (0..{n - 1})")
    feats = pipeline.renderer.features
    if feats is None:
        raise MonoNeRFError("the run's features are not encoded (call pipeline.encode() first)")
    model, a = pipeline.model, spec.static_scene
    camera = render_camera(pipeline, downscale)
    points = camera.size[0] * camera.size[1] * pipeline.renderer.settings.n_samples  # per frame: worth projecting the maps?
    with torch.inference_mode():
        feats_a = feats.select([a])
        dynamic_fn = None
        if spec.dynamic_scene is not None:
            feats_d = feats_a
            if spec.dynamic_scene != a:
                feats_d = feats_a.with_video_features(feats.select([spec.dynamic_scene]))
            frozen = None
            if spec.freeze is not None:
                frozen = torch.tensor([frame_time(spec.freeze, n)], dtype=torch.float32, device=d.device)
            dynamic_fn = dynamic_field(model, pipeline.renderer.projected(points, feats_d), frozen)
        static_fn = static_field(model, pipeline.renderer.projected(points, feats_a))
        joint_fn = edited_joint_fn(static_fn, dynamic_fn)

    ticks = [float(k) for k in range(n)] if spec.freeze is not None else playback_ticks(n, spec.speed)
    cams = camera_path(d.poses[a], d.render_poses[a], ticks, spec.camera, spec.view)
    steps = list(zip(cams, ticks))
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc=spec.kind, unit="frame")
    frames = []
    with torch.inference_mode():
        for cam, tick in steps:
            t = torch.tensor([frame_time(tick, n)], dtype=torch.float32, device=d.device)
            out = render_edit(pipeline.renderer, joint_fn, cam[None].to(d.device), t, camera.select([a]),
                              chunk=int(pipeline.cfg.info.chunk))
            frames.append({k: v[0] for k, v in out.items()})
    return frames


def dynamic_blend_peak(pipeline, spec: EditSpec, frames: list[dict], downscale: int = 1) -> float:
    """The largest blending weight of the edit's dynamic part: over the rendered frames, or for ``remove-dynamic``
    (whose frames have none) over the unedited scene at its first, middle and last time (training cameras, renders
    4x smaller than the edit's)."""
    if spec.kind != "remove-dynamic":
        return max(float(f["dynamicness_map"].max()) for f in frames)
    from mononerf.eval.renders import render_camera

    pipeline, spec = in_group(pipeline, spec)
    d = pipeline.data
    n, a = d.num_frames, spec.static_scene
    small = max(1, min(4 * downscale, d.height // 8, d.width // 8))
    camera = render_camera(pipeline, small).select([a])
    renderer = pipeline.renderer
    full, renderer.features = renderer.features, renderer.features.select([a])
    try:
        peak = 0.0
        for e in sorted({0, (n - 1) // 2, n - 1}):
            t = torch.tensor([frame_time(e, n)], dtype=torch.float32, device=d.device)
            out = renderer.render_views(d.poses[a:a + 1, e, :, :4], t, camera,
                                        chunk=int(pipeline.cfg.info.chunk))
            peak = max(peak, float(out["dynamicness_map"].max()))
    finally:
        renderer.features = full
    return peak


def empty_dynamic_warning(pipeline, spec: EditSpec, peak: float) -> str | None:
    """The warning for an edit whose dynamic part is empty (blending peak below :data:`EMPTY_BLEND`), else None."""
    if peak >= EMPTY_BLEND:
        return None
    names = pipeline.data.names
    b = spec.static_scene if spec.dynamic_scene is None else spec.dynamic_scene
    return (f"warning: the dynamic part of {names[b]} is empty (blending weight <= {peak:.3g} on every rendered "
            f"pixel, below {EMPTY_BLEND:g}): this {spec.kind} video looks like the unedited scene. Train the dynamic "
            "stage longer or with the recipe (docs/training.md)")


def edit_video(pipeline, spec: EditSpec, out: Path, downscale: int = 1, fps: float = DEFAULT_FPS,
               progress: bool = False) -> Path:
    """Render an edit and write its rgb frames as ``out`` (mp4); warns on stderr when the dynamic part is empty."""
    from mononerf.utils.images import to_uint8
    from mononerf.utils.video import write_video

    frames = edit_frames(pipeline, spec, downscale, progress)
    warning = empty_dynamic_warning(pipeline, spec, dynamic_blend_peak(pipeline, spec, frames, downscale))
    if warning:
        print(warning, file=sys.stderr)
    return write_video(out, [to_uint8(f["rgb_map_full"]) for f in frames], fps=fps)
