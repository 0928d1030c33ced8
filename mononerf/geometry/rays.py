"""Camera rays, NDC conversion and pinhole projection as pure functions (method.md §1.3, §2.4, §3.5).

Dimension vocabulary used in the shapes below: ``S`` scenes, ``R`` rays, ``K`` samples per ray,
``H``/``W`` image height/width in pixels, ``*`` any further leading dims.

Camera convention (method.md §1.2): NeRF/OpenGL, ``c2w = [R | t]`` with camera columns [right, up, back];
the camera looks along its -z axis; pixel ``u`` grows to the right, ``v`` grows downwards.

Per-scene intrinsics (``H``, ``W``, ``focal``) may be Python numbers, 0-d tensors, or tensors of shape
``(S,)`` / ``(S, 1)`` that are broadcast against the scene dim of the points or rays (method.md §1.3: "H, W, f
are per-scene tensors (B,1) broadcast against (B,R)").
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from mononerf.utils.checks import check_shape
from mononerf.utils.tensors import constant_like

# Largest NDC depth kept by the NDC->world conversion (method.md §1.3: clamp(z_ndc, -1, 1-1e-3)).
NDC_Z_MAX = 1.0 - 1e-3


class RayBundle(NamedTuple):
    """Rays of ``S`` scenes as the renderer consumes them (method.md §3.1).

    Attributes:
        origins: (S, R, 3) ray origins (NDC when the scene is rendered in NDC).
        directions: (S, R, 3) ray directions, not normalised (NDC when in NDC).
        viewdirs: (S, R, 3) unit WORLD-space viewing directions (computed before NDC, method.md §1.3).
    """

    origins: Tensor
    directions: Tensor
    viewdirs: Tensor


def per_scene(value: float | Tensor, like: Tensor, name: str = "value") -> Tensor:
    """Turn a per-scene scalar into a tensor broadcastable against ``like[..., 0]``.

    Args:
        value: a number, a 0-d / 1-element tensor, or a tensor of shape (S,) or (S, 1).
        like: (S, *, C) tensor whose leading dim is the scene dim.
        name: used in the error message.

    Returns:
        A 0-d tensor, or a tensor of shape (S, 1, ..., 1) with ``like.dim() - 1`` dims, with the
        device and dtype of ``like``.
    """
    v = constant_like(value, like)
    if v.numel() == 1:
        return v.reshape(())
    if v.dim() > 2 or (v.dim() == 2 and v.shape[1] != 1):
        raise ValueError(f"{name} must be a scalar, (S,) or (S, 1); got shape {tuple(v.shape)}")
    v = v.reshape(-1)
    if like.dim() < 2 or like.shape[0] != v.shape[0]:
        raise ValueError(
            f"{name} has {v.shape[0]} per-scene values but the tensor it applies to has shape {tuple(like.shape)}"
        )
    return v.reshape((v.shape[0],) + (1,) * (like.dim() - 2))


def _pose_like(pose: Tensor, pts: Tensor, name: str) -> Tensor:
    """Reshape a pose (3, 4) or (S, 3, 4) so it broadcasts against points (S, *, 3) as (S, 1.., 3, 4)."""
    check_shape(pose, "* 3 4", name)
    if pose.dim() == 2:
        return pose
    if pose.dim() != 3 or pts.dim() < 2 or pose.shape[0] != pts.shape[0]:
        raise ValueError(
            f"{name} of shape {tuple(pose.shape)} must be (3, 4) or (S, 3, 4) with S = points.shape[0]; "
            f"points have shape {tuple(pts.shape)}"
        )
    return pose.reshape((pose.shape[0],) + (1,) * (pts.dim() - 2) + (3, 4))


def pixel_grid(H: int, W: int, *, pixel_offset: float = 0.0, device=None, dtype=None) -> tuple[Tensor, Tensor]:
    """Pixel coordinates ``(i, j)`` = (x to the right, y downwards), each (H, W) (method.md §1.1 grids).

    ``pixel_offset=0`` gives the original's integer pixel corners (quirk ``no_half_pixel_offset``,
    method.md §8.15); ``0.5`` gives pixel centres.
    """
    x = torch.arange(W, device=device, dtype=dtype) + pixel_offset
    y = torch.arange(H, device=device, dtype=dtype) + pixel_offset
    j, i = torch.meshgrid(y, x, indexing="ij")
    return i, j


def pixel_rays(xs: Tensor, ys: Tensor, H: int, W: int, focal: Tensor, c2w: Tensor) -> tuple[Tensor, Tensor]:
    """World-space rays through given pixel coordinates of each scene's camera (method.md §1.3).

    .. math::
        d_{cam} = \\left(\\frac{x - W/2}{f},\\; -\\frac{y - H/2}{f},\\; -1\\right),\\quad
        d = R\\, d_{cam},\\quad o = t

    Args:
        xs, ys: (S, *) pixel coordinates (x to the right, y downwards), offsets already applied.
        H, W: image size in pixels.
        focal: (S,) or (S, 1) focal length in pixels.
        c2w: (S, 3, 4) camera-to-world poses.

    Returns:
        rays_o, rays_d: each (S, *, 3).
    """
    return intrinsic_rays(xs, ys, focal, focal, W * 0.5, H * 0.5, c2w)


def intrinsic_rays(xs: Tensor, ys: Tensor, fx, fy, cx, cy, c2w: Tensor) -> tuple[Tensor, Tensor]:
    """World-space rays through pixel coordinates of pinhole cameras with their own intrinsics.

    .. math::
        d_{cam} = \\left(\\frac{x - c_x}{f_x},\\; -\\frac{y - c_y}{f_y},\\; -1\\right),\\quad
        d = R\\, d_{cam},\\quad o = t

    With ``fx = fy = focal`` and ``(cx, cy) = (W/2, H/2)`` this is :func:`pixel_rays`, value for value.

    Args:
        xs, ys: (S, *) pixel coordinates (x to the right, y downwards; pixel index k at coordinate k).
        fx, fy, cx, cy: numbers or per-scene (S,) / (S, 1), in pixels.
        c2w: (S, 3, 4) camera-to-world poses (OpenGL axes).

    Returns:
        rays_o, rays_d: each (S, *, 3).
    """
    check_shape(c2w, "S 3 4", "c2w")
    extra = (1,) * (xs.dim() - 1)
    like = xs[..., None]
    fx, fy = per_scene(fx, like, "fx"), per_scene(fy, like, "fy")  # (S, 1, ..., 1) or 0-d
    cx, cy = per_scene(cx, like, "cx"), per_scene(cy, like, "cy")
    rot = c2w[:, :3, :3].reshape((-1,) + extra + (3, 3))
    dirs = torch.stack([(xs - cx) / fx, -(ys - cy) / fy, -torch.ones_like(xs)], -1)
    rays_d = torch.sum(dirs[..., None, :] * rot, -1)
    rays_o = c2w[:, :3, 3].reshape((-1,) + extra + (3,)).expand(rays_d.shape)
    return rays_o, rays_d


def get_rays(
    H: int, W: int, focal: float | Tensor, c2w: Tensor, *, pixel_offset: float = 0.0
) -> tuple[Tensor, Tensor]:
    """World-space rays through every pixel of a pinhole camera (method.md §1.3), see :func:`pixel_rays`.

    ``(i, j)`` are integer pixel coordinates plus ``pixel_offset`` (0 = the original, no half-pixel
    offset, quirk ``no_half_pixel_offset`` method.md §8.15; 0.5 = pixel centres).

    Args:
        H, W: image size in pixels (shared by all scenes).
        focal: focal length in pixels; a number, or (S,) / (S, 1) when ``c2w`` is batched.
        c2w: (3, 4) camera-to-world pose, or (S, 3, 4) for S scenes.
        pixel_offset: added to the integer pixel coordinates.

    Returns:
        rays_o, rays_d: each (H, W, 3), or (S, H, W, 3) for a batched ``c2w``.
        The centre pixel (W/2, H/2) of an even-sized image looks along the camera's -z axis.
    """
    check_shape(c2w, "* 3 4", "c2w")
    if c2w.dim() not in (2, 3):
        raise ValueError(f"c2w must be (3, 4) or (S, 3, 4), got {tuple(c2w.shape)}")
    batched = c2w.dim() == 3
    poses = c2w if batched else c2w[None]
    f = constant_like(focal, c2w)
    f = f if batched else f.reshape(1)
    i, j = pixel_grid(H, W, pixel_offset=pixel_offset, device=c2w.device, dtype=c2w.dtype)
    S = poses.shape[0]
    rays_o, rays_d = pixel_rays(i.expand(S, H, W), j.expand(S, H, W), H, W, f, poses)
    return (rays_o, rays_d) if batched else (rays_o[0], rays_d[0])


def ndc_offsets(H: float | Tensor, W: float | Tensor, principal, like: Tensor) -> tuple[Tensor, Tensor] | None:
    """NDC shift of an off-centre principal point ``(c_x, c_y)`` (numbers or (S,); None = the image centre):
    ``(a_x, a_y) = (2 c_x / W - 1, 1 - 2 c_y / H)``, added to the centred formulas of :func:`ndc_rays` so that pixel
    ``x`` sits at ``x_{ndc} = 2 x / W - 1`` (y up). Zero for ``(W/2, H/2)``; None for ``principal=None``; each
    broadcastable against ``like[..., 0]`` (``like``: (S, *, C))."""
    if principal is None:
        return None
    cx, cy = principal
    H, W = per_scene(H, like, "H"), per_scene(W, like, "W")
    return 2.0 * per_scene(cx, like, "cx") / W - 1.0, 1.0 - 2.0 * per_scene(cy, like, "cy") / H


def ndc_rays(
    H: float | Tensor, W: float | Tensor, focal: float | Tensor, near: float, rays_o: Tensor, rays_d: Tensor, *,
    fy: float | Tensor | None = None, principal=None,
) -> tuple[Tensor, Tensor]:
    """Convert world rays of forward-facing scenes to normalised device coordinates (method.md §1.3).

    Origins are first moved to the near plane, ``o \\leftarrow o + t_n d`` with ``t_n = -(n + o_z)/d_z``, then

    .. math::
        o' = \\left(-\\frac{f}{W/2}\\frac{o_x}{o_z},\\; -\\frac{f}{H/2}\\frac{o_y}{o_z},\\; 1 + \\frac{2n}{o_z}\\right)

        d' = \\left(-\\frac{f}{W/2}\\Big(\\frac{d_x}{d_z} - \\frac{o_x}{o_z}\\Big),\\;
                    -\\frac{f}{H/2}\\Big(\\frac{d_y}{d_z} - \\frac{o_y}{o_z}\\Big),\\; -\\frac{2n}{o_z}\\right)

    The renderer always passes ``near = 1.0`` (method.md §3.1, §8.15). A camera with ``f_y \\ne f_x`` (``fy``) uses
    ``f_y`` in the y terms; an off-centre principal point adds :func:`ndc_offsets` to ``o'`` (the directions, which
    are differences, do not change). Without them (the original's camera) the values are the original's to the bit.

    Args:
        H, W, focal: numbers or per-scene tensors (S,) / (S, 1) broadcast against the rays' scene dim; ``focal``
            is f_x.
        near: near-plane depth n.
        rays_o, rays_d: (S, *, 3) world rays (or (*, 3) with scalar intrinsics).
        fy: f_y, as ``focal``; None = ``focal``.
        principal: ``(c_x, c_y)`` (numbers or (S,)); None = the image centre.

    Returns:
        rays_o, rays_d in NDC, same shapes as the inputs.
    """
    check_shape(rays_o, "* 3", "rays_o")
    if rays_d.shape != rays_o.shape:
        raise ValueError(f"rays_d shape {tuple(rays_d.shape)} differs from rays_o shape {tuple(rays_o.shape)}")
    shift = ndc_offsets(H, W, principal, rays_o)
    H = per_scene(H, rays_o, "H")
    W = per_scene(W, rays_o, "W")
    fx = per_scene(focal, rays_o, "focal")
    fy = fx if fy is None else per_scene(fy, rays_o, "fy")
    t = -(near + rays_o[..., 2]) / rays_d[..., 2]
    rays_o = rays_o + t[..., None] * rays_d
    o0 = -1.0 / (W / (2.0 * fx)) * rays_o[..., 0] / rays_o[..., 2]
    o1 = -1.0 / (H / (2.0 * fy)) * rays_o[..., 1] / rays_o[..., 2]
    o2 = 1.0 + 2.0 * near / rays_o[..., 2]
    d0 = -1.0 / (W / (2.0 * fx)) * (rays_d[..., 0] / rays_d[..., 2] - rays_o[..., 0] / rays_o[..., 2])
    d1 = -1.0 / (H / (2.0 * fy)) * (rays_d[..., 1] / rays_d[..., 2] - rays_o[..., 1] / rays_o[..., 2])
    d2 = -2.0 * near / rays_o[..., 2]
    if shift is not None:
        o0, o1 = o0 + shift[0], o1 + shift[1]
    return torch.stack([o0, o1, o2], -1), torch.stack([d0, d1, d2], -1)


def ndc_to_world(
    pts_ndc: Tensor, H: float | Tensor, W: float | Tensor, focal: float | Tensor, *, near: float = 1.0,
    fy: float | Tensor | None = None, principal=None,
) -> Tensor:
    """NDC points back to world (reference-camera) coordinates, with the original's clamp (method.md §1.3, §4.1).

    .. math::
        z = \\frac{2n}{\\operatorname{clamp}(z_{ndc}, -1, 1 - 10^{-3}) - 1},\\quad
        x = -x_{ndc}\\, z\\, \\frac{W}{2f},\\quad y = -y_{ndc}\\, z\\, \\frac{H}{2f}

    The original hard-wires ``n = 1`` (``NDC2world``). NDC depth 1 (infinity) is clamped to 1-1e-3, i.e.
    world depth -2000·n. ``fy`` and ``principal`` invert those of :func:`ndc_rays` (the shift is subtracted
    first); without them the values are the original's.

    Args:
        pts_ndc: (S, *, 3) points in NDC (or (*, 3) with scalar intrinsics).
        H, W, focal: numbers or per-scene tensors (S,) / (S, 1); ``focal`` is f_x.  near: the rays' near plane n.
        fy: f_y; None = ``focal``.  principal: ``(c_x, c_y)``; None = the image centre.

    Returns:
        (S, *, 3) world points.
    """
    check_shape(pts_ndc, "* 3", "pts_ndc")
    shift = ndc_offsets(H, W, principal, pts_ndc)
    H = per_scene(H, pts_ndc, "H")[..., None]
    W = per_scene(W, pts_ndc, "W")[..., None]
    f = per_scene(focal, pts_ndc, "focal")[..., None]
    f_y = f if fy is None else per_scene(fy, pts_ndc, "fy")[..., None]
    x_ndc, y_ndc = pts_ndc[..., 0:1], pts_ndc[..., 1:2]
    if shift is not None:
        x_ndc, y_ndc = x_ndc - shift[0][..., None], y_ndc - shift[1][..., None]
    pts_z = 2 * near / (torch.clamp(pts_ndc[..., 2:], min=-1.0, max=NDC_Z_MAX) - 1)
    pts_x = -x_ndc * pts_z * W / 2 / f
    pts_y = -y_ndc * pts_z * H / 2 / f_y
    return torch.cat([pts_x, pts_y, pts_z], -1)


def world_to_ndc(
    pts_world: Tensor, H: float | Tensor, W: float | Tensor, focal: float | Tensor, *, near: float = 1.0,
    fy: float | Tensor | None = None, principal=None,
) -> Tensor:
    """World (reference-camera) points to NDC; the inverse of :func:`ndc_to_world` for z in [-2000n, -n].

    .. math::
        x_{ndc} = -\\frac{f}{W/2}\\frac{x}{z},\\quad y_{ndc} = -\\frac{f}{H/2}\\frac{y}{z},\\quad
        z_{ndc} = 1 + \\frac{2n}{z}

    Args: pts_world (S, *, 3) (z < 0 in front of the reference camera); the rest as :func:`ndc_to_world`.
    Returns: (S, *, 3) points in NDC.
    """
    check_shape(pts_world, "* 3", "pts_world")
    shift = ndc_offsets(H, W, principal, pts_world)
    H = per_scene(H, pts_world, "H")
    W = per_scene(W, pts_world, "W")
    f = per_scene(focal, pts_world, "focal")
    f_y = f if fy is None else per_scene(fy, pts_world, "fy")
    x, y, z = pts_world.unbind(-1)
    x_ndc, y_ndc = -1.0 / (W / (2.0 * f)) * x / z, -1.0 / (H / (2.0 * f_y)) * y / z
    if shift is not None:
        x_ndc, y_ndc = x_ndc + shift[0], y_ndc + shift[1]
    return torch.stack([x_ndc, y_ndc, 1.0 + 2.0 * near / z], -1)


def invert_pose(c2w: Tensor) -> Tensor:
    """Rigid inverse of a camera pose: ``w2c = [R^T | -R^T t]`` (method.md §2.3).

    Args:
        c2w: (*, 3, 4) camera-to-world.

    Returns:
        (*, 3, 4) world-to-camera.
    """
    check_shape(c2w, "* 3 4", "c2w")
    rot_t = c2w[..., :3, :3].transpose(-1, -2)
    trans = -(rot_t @ c2w[..., :3, 3:4])
    return torch.cat([rot_t, trans], -1)


def transform_points(trans_01: Tensor, points_1: Tensor) -> Tensor:
    """Apply a rigid transform: ``points_0 = R points_1 + t``.

    Args:
        trans_01: (3, 4) or (S, 3, 4).
        points_1: (*, 3), or (S, *, 3) for a batched transform.

    Returns:
        points_0 with the shape of ``points_1``.
    """
    check_shape(points_1, "* 3", "points_1")
    pose = _pose_like(trans_01, points_1, "trans_01")
    return torch.sum(points_1[..., None, :] * pose[..., :3, :3], -1) + pose[..., :3, 3]


def world_to_camera(pts_world: Tensor, c2w: Tensor) -> Tensor:
    """World points into a camera given its camera-to-world pose: ``p_c = R^T (p_w - t)`` (method.md §3.5).

    Same operation order as the original's ``render_3d_point`` (translate, then rotate by R^T).

    Args:
        pts_world: (*, 3), or (S, *, 3) for a batched pose.
        c2w: (3, 4) or (S, 3, 4).

    Returns:
        Camera-space points with the shape of ``pts_world``.
    """
    check_shape(pts_world, "* 3", "pts_world")
    pose = _pose_like(c2w, pts_world, "c2w")
    rot_t = pose[..., :3, :3].transpose(-1, -2)
    return torch.sum((pts_world - pose[..., :3, 3])[..., None, :] * rot_t, -1)


def _principal_point_like(principal_point, pts: Tensor) -> Tensor:
    pp = constant_like(principal_point, pts)
    if pp.shape[-1:] != (2,) or pp.dim() > 2:
        raise ValueError(f"principal_point must be (2,) or (S, 2), got shape {tuple(pp.shape)}")
    if pp.dim() == 2:
        if pts.dim() < 2 or pp.shape[0] != pts.shape[0]:
            raise ValueError(
                f"principal_point has {pp.shape[0]} scenes but points have shape {tuple(pts.shape)}"
            )
        pp = pp.reshape((pp.shape[0],) + (1,) * (pts.dim() - 2) + (2,))
    return pp


def camera_to_pixels(pts_cam: Tensor, focal: float | Tensor, principal_point, *, fy: float | Tensor | None = None
                     ) -> Tensor:
    """Pinhole projection of camera-space points (camera looks along -z) to pixels (method.md §2.4, §3.5).

    .. math::
        u = \\frac{x}{-z} f_x + c_x,\\quad v = -\\frac{y}{-z} f_y + c_y

    Args:
        pts_cam: (S, *, 3) camera-space points (or (*, 3) with scalar intrinsics).
        focal: f_x, a number or per-scene (S,) / (S, 1).
        principal_point: (c_x, c_y): a pair of numbers, a (2,) tensor, or (S, 2).
        fy: f_y, as ``focal``; None = ``focal`` (the original's one focal).

    Returns:
        (S, *, 2) pixel coordinates (u to the right, v downwards).
    """
    check_shape(pts_cam, "* 3", "pts_cam")
    f = per_scene(focal, pts_cam, "focal")[..., None]
    f_y = f if fy is None else per_scene(fy, pts_cam, "fy")[..., None]
    pp = _principal_point_like(principal_point, pts_cam)
    u = pts_cam[..., 0:1] / (-pts_cam[..., 2:]) * f
    v = -pts_cam[..., 1:2] / (-pts_cam[..., 2:]) * f_y
    return torch.cat([u, v], -1) + pp


def project_to_pixels(pts_world: Tensor, w2c: Tensor, focal: float | Tensor, principal_point, *,
                      fy: float | Tensor | None = None) -> Tensor:
    """World points to pixel coordinates of a camera given world-to-camera ``w2c`` (method.md §2.4, §3.5).

    ``camera_to_pixels(transform_points(w2c, pts_world), focal, principal_point, fy=fy)``.

    Args:
        pts_world: (S, *, 3), or (*, 3) with an unbatched pose.
        w2c: (3, 4) or (S, 3, 4) world-to-camera.
        focal: f_x, a number or per-scene (S,) / (S, 1).
        principal_point: (c_x, c_y) pair, (2,) or (S, 2).
        fy: f_y; None = ``focal``.

    Returns:
        (S, *, 2) pixel coordinates.
    """
    return camera_to_pixels(transform_points(w2c, pts_world), focal, principal_point, fy=fy)
