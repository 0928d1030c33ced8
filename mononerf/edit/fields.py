"""Scene editing as field compositing (the paper's editing results; blending of method.md §3.3).

Every edit keeps the renderer's per-sample blend of a static and a dynamic raw output
(:func:`~mononerf.render.composite.composite_blended`) and only changes where each part comes from:

* **remove the dynamic part**: the dynamic raw output is empty, density 0 (so :math:`\\alpha_d = 0`) and blending
  :math:`b = 0`; then :math:`T^{full} = T^s` and :math:`C_{full} = \\sum_k T^s_k \\alpha_{s,k} c_{s,k} = C_s`: the
  static field alone, exactly.
* **compose**: the static part is queried with the features of scene A, the dynamic part with the video features of
  scene B (:meth:`SceneFeatures.with_video_features`), both at A's cameras and A's geometry, as the original's
  ``info.change_background`` swaps the static image features across the scenes of a multi-scene batch.
* **retime / freeze**: the dynamic part is queried at another time than the static part (the model takes continuous
  time: in-between times give slow motion, a fixed time freezes the motion).

Dimension vocabulary: ``S`` scenes, ``R`` rays, ``K`` samples per ray. Field callbacks as in
:mod:`mononerf.render.renderer`: ``pts_ref`` (S, R, K, 4) = NDC xyz + normalised time, ``viewdirs`` (S, R, 3).
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import Tensor

from mononerf.geometry.cameras import Pinhole
from mononerf.models.mononerf import MonoNeRF, SceneFeatures
from mononerf.models.outputs import DYNAMIC_CHANNELS, empty_dynamic, without_static_blending
from mononerf.utils.checks import check_shape

FieldFn = Callable[[Tensor, Tensor], Tensor]
JointFieldFn = Callable[[Tensor, Tensor], "tuple[Tensor, Tensor]"]

# Per-ray maps an edit render keeps.
EDIT_KEYS = ("rgb_map_full", "depth_map_full", "dynamicness_map", "rgb_map_s", "rgb_map_d")


def empty_dynamic_raw(like: Tensor, channels: int = DYNAMIC_CHANNELS) -> Tensor:  # (see mononerf.models.outputs)
    """A dynamic raw output with nothing in it: density 0 and blending 0 at every sample.

    Args:
        like: (S, R, K, C) any raw output of the same samples (gives shape, dtype and device).

    Returns:
        (S, R, K, channels) zeros: rgb logits 0 (irrelevant: alpha is 0), density 0, positions 0, blending 0.
    """
    check_shape(like, "S R K C", "like")
    return empty_dynamic(like, channels)


def with_time(pts_ref: Tensor, t: Tensor) -> Tensor:
    """Replace the time channel of (S, R, K, 4) reference points by the normalised time ``t`` (S,)."""
    check_shape(pts_ref, "S R K 4", "pts_ref")
    check_shape(t, f"{pts_ref.shape[0]}", "t")
    time = t.to(pts_ref).reshape(-1, 1, 1, 1).expand(pts_ref.shape[:-1] + (1,))
    return torch.cat([pts_ref[..., :3], time], -1)


def static_field(model: MonoNeRF, feats: SceneFeatures) -> FieldFn:
    """The static branch as :meth:`MonoNeRF.query_joint` evaluates it (features of the query time's frame), alone.

    ``query_static`` is the static pretraining pass (a random frame per call, quirk ``random_static_frame``); a
    render wants the joint pass's static output without paying for the dynamic branch. Returns
    ``fn(pts_ref (S, R, K, 4), viewdirs (S, R, 3)) -> raw_s (S, R, K, 5)``, equal to ``query_joint(...)[0]``.
    """

    return functools.partial(model.query_static_joint, feats=feats)


def dynamic_field(model: MonoNeRF, feats: SceneFeatures, time: Tensor | None = None) -> FieldFn:
    """The dynamic branch (:meth:`MonoNeRF.query_dynamic`) with ``feats``, at the time of the query or, when ``time``
    (S,) is given, always at that normalised time (a frozen or re-timed dynamic part)."""
    query = functools.partial(model.query_dynamic, feats=feats)
    if time is None:
        return query
    return lambda pts_ref, viewdirs: query(with_time(pts_ref, time), viewdirs)


def edited_joint_fn(static_fn: FieldFn, dynamic_fn: FieldFn | None) -> JointFieldFn:
    """A ``joint_fn`` for :func:`~mononerf.render.renderer.render_rays_dynamic` from two independent parts.

    ``dynamic_fn=None`` removes the dynamic part (:func:`empty_dynamic_raw`; the static head's own blending channel,
    read when ``DyNeRF_blending`` is off, is zeroed too), so the render is the static field alone.
    """

    def joint(pts_ref: Tensor, viewdirs: Tensor) -> tuple[Tensor, Tensor]:
        raw_s = static_fn(pts_ref, viewdirs)
        if dynamic_fn is None:
            raw_s = without_static_blending(raw_s)
            return raw_s, empty_dynamic_raw(raw_s)
        return raw_s, dynamic_fn(pts_ref, viewdirs)

    return joint


def render_edit(renderer, joint_fn: JointFieldFn, c2w: Tensor, t: Tensor, camera: Pinhole,
                chunk: int = 1024 * 32) -> dict[str, Tensor]:
    """Full images of an edited field with the run's test settings (no jitter, no noise; method.md §3.6): the
    renderer's one render path (:meth:`~mononerf.render.field.FieldRenderer.render_views`) with the edit's field.

    Args:
        renderer: the run's :class:`~mononerf.render.field.FieldRenderer` (settings and frame count).
        joint_fn: e.g. :func:`edited_joint_fn`.
        c2w: (S, 3, 4) cameras; t: (S,) normalised time (the static part's; the dynamic part's unless frozen).
        camera: the render's intrinsics (:class:`~mononerf.geometry.cameras.Pinhole`, (S,) fields).

    Returns:
        dict of :data:`EDIT_KEYS` maps, (S, H, W) or (S, H, W, 3), on the CPU.
    """
    # network calls of netchunk // S points, as every render (method.md §2.6): bounded memory, the original's grouping
    joint_fn = renderer.batched(joint_fn, int(c2w.shape[0]))
    return renderer.render_views(c2w, t, camera, keys=EDIT_KEYS, joint_fn=joint_fn, chunk=chunk)
