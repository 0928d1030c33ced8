"""Ray rendering with the radiance fields passed in as callbacks (method.md §3.1, §3.2; style rule 8).

Dimension vocabulary: ``S`` scenes, ``R`` rays per scene, ``K`` samples per ray, ``H``/``W`` image size.

Field callbacks (the renderer knows nothing about MonoNeRF's networks):

* ``static_fn(pts_ref, viewdirs) -> raw_s``: pts_ref (S, R, K, 4) = NDC xyz + normalised time,
  viewdirs (S, R, 3); raw_s (S, R, K, >=4) = rgb logits 0:3, density 3 (method.md §2.10).
* ``joint_fn(pts_ref, viewdirs) -> (raw_s (S, R, K, >=5), raw_d (S, R, K, >=11))``: one evaluation of both
  branches at time t; raw_d = rgb logits 0:3, density 3, ABSOLUTE NDC positions at t-1 (4:7) and t+1
  (7:10), blending 10, optional extra features 11: (method.md §2.9).
* ``dynamic_fn(pts_ref, viewdirs) -> raw_d (S, R, K, >=11)``: the dynamic branch alone.
* ``ray_fn(rays, near, far) -> dict`` for :func:`~mononerf.render.images.render_chunked`, e.g.
  ``functools.partial(render_rays_dynamic, t=t, n_samples=64, ...)``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from mononerf.errors import MonoNeRFError
from mononerf.geometry.rays import RayBundle
from mononerf.models.outputs import DYNAMIC_CHANNELS, RGB_SIGMA, STATIC_CHANNELS, DynamicRaw, static_blending
from mononerf.render.composite import composite_blended, composite_single
from mononerf.render.sampling import sample_along_rays
from mononerf.utils.checks import check_shape
from mononerf.utils.host import host_read
from mononerf.utils.tensors import constant_like

FieldFn = Callable[[Tensor, Tensor], Tensor]
JointFieldFn = Callable[[Tensor, Tensor], "tuple[Tensor, Tensor]"]




def check_finite_outputs(outputs: dict[str, Tensor]) -> None:
    """Raise :class:`MonoNeRFError` naming the first output holding NaN or Inf (method.md §3.2, §8.25 fixed)."""
    floats = [(key, value) for key, value in outputs.items() if value.is_floating_point()]
    if not floats:
        return
    # one read-back for all outputs (on a GPU each read waits for the device), the names only when one fails
    dev = floats[0][1].device
    finite = torch.stack([torch.isfinite(value).all().to(dev) for _, value in floats])
    with host_read("a non-finite output stops the run"):
        if bool(finite.all()):
            return
    for (key, value), ok in zip(floats, finite.tolist()):
        if not ok:
            n_nan = int(torch.isnan(value).sum())
            n_inf = int(torch.isinf(value).sum())
            raise MonoNeRFError(
                f"non-finite values in {key} (shape {tuple(value.shape)}: {n_nan} NaN, {n_inf} Inf); "
                "training diverged: lower the learning rate or resume from the last checkpoint"
            )


def _check_rays(rays: RayBundle | tuple, t: Tensor) -> RayBundle:
    rays = RayBundle(*rays)
    check_shape(rays.origins, "S R 3", "rays.origins")
    for name in ("directions", "viewdirs"):
        if getattr(rays, name).shape != rays.origins.shape:
            raise ValueError(
                f"rays.{name} {tuple(getattr(rays, name).shape)} must match rays.origins {tuple(rays.origins.shape)}"
            )
    check_shape(t, "S", "t")
    if t.shape[0] != rays.origins.shape[0]:
        raise ValueError(f"t has {t.shape[0]} scenes but rays have {rays.origins.shape[0]}")
    return rays


def _with_time(pts: Tensor, t: Tensor) -> Tensor:
    """(S, R, K, 3) points and (S,) times -> (S, R, K, 4) ``[x, y, z, t]``."""
    time = t.to(pts.dtype).reshape(-1, 1, 1, 1).expand(pts.shape[:-1] + (1,))
    return torch.cat([pts, time], -1)


def _sample_points(rays: RayBundle, near, far, n_samples, perturb, lindisp, generator) -> tuple[Tensor, Tensor]:
    S, R = rays.origins.shape[:2]
    like = rays.origins[..., 0]
    near = constant_like(near, like).expand(S, R)
    far = constant_like(far, like).expand(S, R)
    z_vals = sample_along_rays(near, far, n_samples, perturb, lindisp, generator)  # (S, R, K)
    pts = rays.origins[..., None, :] + rays.directions[..., None, :] * z_vals[..., :, None]
    return z_vals, pts


def render_rays_static(
    rays: RayBundle | tuple,
    near: float | Tensor,
    far: float | Tensor,
    t: Tensor,
    *,
    n_samples: int,
    static_fn: FieldFn,
    perturb: bool = False,
    lindisp: bool = False,
    raw_noise_std: float = 0.0,
    generator: torch.Generator | None = None,
    check_finite: bool = True,
) -> dict[str, Tensor]:
    """Static pretraining pass (method.md §3.2 steps 1-3): sample, query ``static_fn`` once, composite (§3.4).

    Args:
        rays: (origins, directions, viewdirs), each (S, R, 3); origins/directions in NDC.
        near, far: numbers or (S, R) bounds (0 and 1 in NDC).
        t: (S,) normalised time of each scene's frame (method.md §1.5).
        n_samples: K samples per ray.
        static_fn: ``(pts_ref (S, R, K, 4), viewdirs (S, R, 3)) -> raw (S, R, K, >=4)``.
        perturb, lindisp: see :func:`~mononerf.render.sampling.sample_along_rays`.
        raw_noise_std: density noise std.
        generator: optional ``torch.Generator`` for jitter and noise.
        check_finite: raise :class:`MonoNeRFError` on NaN/Inf outputs.

    Returns:
        dict :data:`~mononerf.render.outputs.STATIC_OUTPUT_KEYS`: ``rgb_map_s`` (S, R, 3), ``weights_s`` (S, R, K), ``depth_map_s``
        (S, R) (detached), ``acc_map_s`` (S, R) (detached), ``alpha_s`` (S, R, K), ``rgb_s`` (S, R, K, 3).
    """
    rays = _check_rays(rays, t)
    z_vals, pts = _sample_points(rays, near, far, n_samples, perturb, lindisp, generator)
    raw_s = static_fn(_with_time(pts, t), rays.viewdirs)
    check_shape(raw_s, f"{pts.shape[0]} {pts.shape[1]} {pts.shape[2]} C", "static_fn output")
    out = composite_single(raw_s[..., RGB_SIGMA], z_vals, rays.directions, raw_noise_std, generator)
    ret = {f"{key}_s": value for key, value in out.items()}
    if check_finite:
        check_finite_outputs(ret)
    return ret


def _neighbour_pass(
    dynamic_fn: FieldFn, pts_ref: Tensor, rays: RayBundle, z_vals: Tensor, weights_d: Tensor,
    raw_noise_std: float, generator: torch.Generator | None, suffix: str,
) -> tuple[dict[str, Tensor], Tensor]:
    """Query the dynamic field at the flowed points of a neighbour time and render it (method.md §3.2 steps 7-8)."""
    raw = dynamic_fn(pts_ref, rays.viewdirs)
    check_shape(raw, f"{pts_ref.shape[0]} {pts_ref.shape[1]} {pts_ref.shape[2]} C", "dynamic_fn output")
    d = DynamicRaw.of(raw)
    pts = pts_ref[..., :3]
    out = composite_single(d.rgb_sigma, z_vals, rays.directions, raw_noise_std, generator)
    ret = {
        f"sceneflow_{suffix}_b": d.position_b - pts,
        f"sceneflow_{suffix}_f": d.position_f - pts,
        f"rgb_map_d_{suffix}": out["rgb_map"],
        f"acc_map_d_{suffix}": torch.abs(torch.sum(out["weights"] - weights_d, -1)),
        f"blending_{suffix}": d.blending,
    }
    if d.features is not None:
        ret[f"features_d_{suffix}"] = d.features
    return ret, pts


def render_rays_dynamic(
    rays: RayBundle | tuple,
    near: float | Tensor,
    far: float | Tensor,
    t: Tensor,
    *,
    n_samples: int,
    num_frames: int,
    joint_fn: JointFieldFn,
    dynamic_fn: FieldFn | None,
    perturb: bool = False,
    lindisp: bool = False,
    raw_noise_std: float = 0.0,
    inference: bool = False,
    shared_noise: bool = True,
    dynerf_blending: bool = True,
    generator: torch.Generator | None = None,
    check_finite: bool = True,
    neighbour_passes: bool = True,
) -> dict[str, Tensor]:
    """Full static+dynamic pass with the t-1 and t+1 dynamic re-renders (method.md §3.2 steps 1-10).

    1. ``z`` from :func:`sample_along_rays`; ``pts = o + z d`` (S, R, K, 3) in NDC; ``pts_ref = [pts, t]``.
    2. ``raw_s, raw_d = joint_fn(pts_ref, viewdirs)``; scene flow
       :math:`sf_b = raw_d[4{:}7] - pts`, :math:`sf_f = raw_d[7{:}10] - pts`; blending b = ``raw_d[10]``
       (``raw_s[4]`` when ``dynerf_blending`` is False).
    3. :func:`composite_blended` (method.md §3.3).
    4. With :math:`\\Delta = 2/N`: ``pts_b = [pts + sf_b, t - Δ]``, ``pts_f = [pts + sf_f, t + Δ]``;
       ``dynamic_fn`` at each, rendered with :func:`composite_single` on the same ``z``;
       :math:`\\text{acc\\_map\\_d\\_b} = |\\sum_k (w^{b}_{d,k} - w_{d,k})|` (likewise f).
    5. Unless ``inference``: ``raw_pts_b_b = pts_b + sf_{b,b}``, ``raw_pts_f_f = pts_f + sf_{f,f}``
       (positions at t∓2, no further network pass).

    Random numbers are drawn in the original's order: jitter, blended noise, t-1 noise, t+1 noise.

    Args:
        rays: (origins, directions, viewdirs), each (S, R, 3); origins/directions in NDC.
        near, far: numbers or (S, R) bounds.
        t: (S,) normalised time per scene (method.md §1.5).
        n_samples: K samples per ray.
        num_frames: N frames of the video (time step 2/N).
        joint_fn: ``(pts_ref, viewdirs) -> (raw_s (S,R,K,>=4), raw_d (S,R,K,>=11))``.
        dynamic_fn: ``(pts_ref, viewdirs) -> raw_d (S,R,K,>=11)``; may be None without ``neighbour_passes``.
        perturb, lindisp: sampling options.
        raw_noise_std: density noise std.
        inference: skip step 5 (method.md §3.2 step 9).
        shared_noise: quirk ``shared_sigma_noise`` (method.md §8.8).
        dynerf_blending: take blending from the dynamic head (the original's DyNeRF_blending=True).
        generator: optional ``torch.Generator`` for jitter and noise.
        check_finite: raise :class:`MonoNeRFError` on NaN/Inf outputs (method.md §8.25 fix).
        neighbour_passes: run steps 4-5 (the t±1 re-renders). Images of time t need only steps 1-3, so full-frame
            renders switch them off: two of the three network passes are saved.

    Returns:
        dict of :data:`~mononerf.render.outputs.DYNAMIC_OUTPUT_KEYS` (less ``INFERENCE_SKIPPED_KEYS`` when
        ``inference``), plus
        ``features_d``/``features_d_b``/``features_d_f`` (S, R, K, C-11) when raw_d has extra channels.
        Per-ray maps are (S, R) or (S, R, 3); per-sample values (S, R, K) or (S, R, K, 3). ``z_vals`` is a
        fresh copy (the original's chunk concatenation copies it; a loss may edit it in place, method.md §4.3).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if neighbour_passes and dynamic_fn is None:
        raise ValueError("the t±1 passes (neighbour_passes=True) need a dynamic_fn")
    rays = _check_rays(rays, t)
    z_vals, pts = _sample_points(rays, near, far, n_samples, perturb, lindisp, generator)
    S, R, K = z_vals.shape
    raw_s, raw_d = joint_fn(_with_time(pts, t), rays.viewdirs)
    check_shape(raw_s, f"{S} {R} {K} C", "joint_fn static output")
    check_shape(raw_d, f"{S} {R} {K} C", "joint_fn dynamic output")
    if raw_d.shape[-1] < DYNAMIC_CHANNELS or raw_s.shape[-1] < (4 if dynerf_blending else STATIC_CHANNELS):
        raise ValueError(
            f"joint_fn must return raw_s with >= {4 if dynerf_blending else STATIC_CHANNELS} and raw_d with >= "
            f"{DYNAMIC_CHANNELS} channels; got {raw_s.shape[-1]} and {raw_d.shape[-1]}"
        )
    d = DynamicRaw.of(raw_d)
    sceneflow_b = d.position_b - pts
    sceneflow_f = d.position_f - pts
    blending = d.blending if dynerf_blending else static_blending(raw_s)

    ret = composite_blended(
        raw_s[..., RGB_SIGMA], d.rgb_sigma, blending, z_vals, rays.directions, raw_noise_std,
        shared_noise=shared_noise, generator=generator,
    )  # fmt: skip
    ret["z_vals"] = z_vals.clone()
    if d.features is not None:
        ret["features_d"] = d.features

    t_interval = 1.0 / num_frames * 2.0
    pts_f_ref = _with_time(pts + sceneflow_f, t + t_interval)
    pts_b_ref = _with_time(pts + sceneflow_b, t - t_interval)
    ret.update(
        sceneflow_b=sceneflow_b, sceneflow_f=sceneflow_f, raw_pts=pts,
        raw_pts_f=pts_f_ref[..., :3], raw_pts_b=pts_b_ref[..., :3], blending=blending,
    )  # fmt: skip

    if not neighbour_passes:
        if check_finite:
            check_finite_outputs(ret)
        return ret

    out_b, pts_b = _neighbour_pass(
        dynamic_fn, pts_b_ref, rays, z_vals, ret["weights_d"], raw_noise_std, generator, "b"
    )
    sceneflow_b_b = out_b.pop("sceneflow_b_b")
    ret.update(out_b)
    out_f, pts_f = _neighbour_pass(
        dynamic_fn, pts_f_ref, rays, z_vals, ret["weights_d"], raw_noise_std, generator, "f"
    )
    sceneflow_f_f = out_f.pop("sceneflow_f_f")
    ret.update(out_f)

    if not inference:
        ret["raw_pts_b_b"] = pts_b + sceneflow_b_b
        ret["raw_pts_f_f"] = pts_f + sceneflow_f_f
    if check_finite:
        check_finite_outputs(ret)
    return ret
