"""Rays in, maps out: the renderer's ray bundles, network calls in slices, renders in chunks of rays (the full images of
FieldRenderer.render_image, mononerf/render/field.py, go through them).

Shapes: S scenes, R rays per scene, K samples per ray.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from mononerf.geometry.cameras import Pinhole
from mononerf.geometry.rays import RayBundle
from mononerf.utils.checks import check_shape
from mononerf.utils.host import host_read
from mononerf.utils.tensors import constant_like

RayFn = Callable[[RayBundle, Tensor, Tensor], "dict[str, Tensor]"]

# The renderer's NDC near plane is hard-wired to 1.0 (method.md §3.1, §8.15).
NDC_NEAR_PLANE = 1.0


def prepare_rays(rays_o: Tensor, rays_d: Tensor, camera: Pinhole, *, ndc: bool = True) -> RayBundle:
    """World rays -> the renderer's (S, R, 3) bundle (method.md §3.1).

    viewdirs = rays_d / ‖rays_d‖ in WORLD space, then (if ``ndc``) ``ndc_rays`` with near plane
    :data:`NDC_NEAR_PLANE` = 1.0; everything flattened to (S, R, 3).

    Args:
        rays_o, rays_d: (S, *, 3) world rays, e.g. (S, R, 3) or (S, H, W, 3).
        camera: the scenes' training intrinsics, which define their NDC box (``Pinhole.centred(H, W, focal)``:
            the original's).
        ndc: convert to NDC (forward-facing scenes; the original's default).
    """
    check_shape(rays_o, "* 3", "rays_o")
    if rays_o.dim() < 3 or rays_d.shape != rays_o.shape:
        raise ValueError(
            f"rays_o and rays_d must both be (S, *, 3) with a scene dim; got {tuple(rays_o.shape)} "
            f"and {tuple(rays_d.shape)}"
        )
    viewdirs = rays_d / torch.norm(rays_d, dim=-1, keepdim=True)
    if ndc:
        rays_o, rays_d = camera.ndc_rays(NDC_NEAR_PLANE, rays_o, rays_d)
    S = rays_o.shape[0]
    return RayBundle(rays_o.reshape(S, -1, 3), rays_d.reshape(S, -1, 3), viewdirs.reshape(S, -1, 3))


def batchify_field(fn, points_per_call: int, *, checkpoint: bool = False):
    """The original's ``batchify`` (method.md §2.6): a field queried on slices of ``points_per_call`` points per scene.

    Points are laid out ray-major, (S, R·K), and cut into consecutive slices exactly as the original cuts its
    flattened samples (``netchunk // S`` per scene), so results that depend on which points share a network call (the
    quirk ``latent_temporal_reshape``, method.md §8.3) match the original's; for per-point fields the slicing changes
    nothing. Each call sees (S, c, 1, 4) points with (S, c, 3) view directions (the per-ray direction repeated per
    sample, as the original embeds it). It also bounds the memory of one call at full-image renders.

    Args:
        fn: field callback ``(pts_ref (S, R, K, 4), viewdirs (S, R, 3)) -> Tensor or tuple of Tensors (S, R, K, C)``.
        points_per_call: slice size per scene (>= 1).
        checkpoint: wrap every call in ``torch.utils.checkpoint`` (non-reentrant) while gradients are on: the
            autograd graph keeps only the slices' inputs and outputs and recomputes one call at a time in the
            backward pass (same values and gradients, one more forward evaluation of the field).
    Returns:
        a callback with ``fn``'s signature.
    """
    if points_per_call < 1:
        raise ValueError(f"points_per_call must be >= 1, got {points_per_call}")

    def call(pts, dirs):
        if checkpoint and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(fn, pts, dirs, use_reentrant=False)
        return fn(pts, dirs)

    def wrapped(pts_ref: Tensor, viewdirs: Tensor):
        check_shape(pts_ref, "S R K 4", "pts_ref")
        S, R, K, _ = pts_ref.shape
        P = R * K
        if P <= points_per_call:
            return call(pts_ref, viewdirs)
        flat = pts_ref.reshape(S, P, 1, 4)
        dirs = viewdirs[:, :, None, :].expand(S, R, K, viewdirs.shape[-1]).reshape(S, P, -1)
        outs = [call(flat[:, i:i + points_per_call], dirs[:, i:i + points_per_call])
                for i in range(0, P, points_per_call)]

        def join(parts):
            return torch.cat(parts, 1).reshape(S, R, K, -1)

        if isinstance(outs[0], tuple):
            return tuple(join([o[j] for o in outs]) for j in range(len(outs[0])))
        return join(outs)

    return wrapped


def render_chunked(
    rays: RayBundle | tuple,
    ray_fn: RayFn,
    *,
    chunk: int,
    near: float | Tensor = 0.0,
    far: float | Tensor = 1.0,
    output_device: torch.device | str | None = None,
) -> dict[str, Tensor]:
    """Evaluate ``ray_fn`` on chunks of at most ``chunk`` rays per scene and concatenate along R (method.md §3.1).

    Args:
        rays: (origins, directions, viewdirs), each (S, R, 3).
        ray_fn: ``(rays (S, r, 3)x3, near (S, r), far (S, r)) -> dict`` of (S, r, ...) tensors.
        chunk: rays per scene per call (>= 1).
        near, far: numbers or (S, R) bounds.
        output_device: move each chunk's outputs there before concatenating (e.g. "cpu" for big images).

    Returns:
        dict of (S, R, ...) tensors (always new tensors, as the original's ``torch.cat``).
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    rays = RayBundle(*rays)
    check_shape(rays.origins, "S R 3", "rays.origins")
    S, R = rays.origins.shape[:2]
    like = rays.origins[..., 0]
    near = constant_like(near, like).expand(S, R)
    far = constant_like(far, like).expand(S, R)
    parts: dict[str, list[Tensor]] = {}
    for start in range(0, R, chunk):
        sl = slice(start, start + chunk)
        out = ray_fn(RayBundle(*(x[:, sl] for x in rays)), near[:, sl], far[:, sl])
        with host_read("a chunk's outputs gathered where the caller asks (the host, for images)"):
            for key, value in out.items():
                parts.setdefault(key, []).append(value if output_device is None else value.to(output_device))
    return {key: torch.cat(values, 1) for key, values in parts.items()}
