"""Optical flow induced by rendered scene flow (spec §3.5; the original's induce_flow / render_3d_point).

Dimension vocabulary: ``S`` scenes, ``R`` rays, ``K`` samples per ray.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mononerf.geometry.rays import camera_to_pixels, ndc_to_world, per_scene, world_to_camera
from mononerf.utils.checks import check_shape


def induce_flow(
    pts_ndc_flowed: Tensor,
    weights: Tensor,
    c2w_neighbour: Tensor,
    H: float | Tensor,
    W: float | Tensor,
    focal: float | Tensor,
    pixel_xy: Tensor,
    ndc: bool = True,
    ndc_hwf: tuple | None = None,
) -> Tensor:
    """Pixel flow from a ray's own pixel to where its flowed expected point lands in a neighbour frame (spec §3.5).

    .. math::
        \\bar p = \\sum_k w_k\\, p^{\\pm}_k \\;(\\text{NDC}),\\quad p_w = \\mathrm{NDC2world}(\\bar p),\\quad
        p_c = R^\\top (p_w - t),\\quad
        \\text{flow} = \\Big(\\frac{x_c}{-z_c} f + \\frac W2,\\; -\\frac{y_c}{-z_c} f + \\frac H2\\Big) - (x, y)

    where :math:`p^{\\pm}_k` are the samples moved to t±1 (``raw_pts_f`` / ``raw_pts_b``), :math:`w_k` the
    CURRENT-frame dynamic weights (``weights_d``), ``[R | t]`` the neighbour's camera-to-world pose and
    ``(x, y)`` the ray's own pixel (integer grid, spec §1.1). With ``ndc=False`` the points are taken as
    world points already (the original's ``induce_flow_wo_ndc``).

    Args:
        pts_ndc_flowed: (S, R, K, 3) flowed sample positions (NDC when ``ndc``).
        weights: (S, R, K) compositing weights.
        c2w_neighbour: (S, 3, 4) pose of the neighbour frame of each scene (or (3, 4) for unbatched input
            (R, K, 3)).
        H, W, focal: numbers or per-scene tensors (S,) / (S, 1).
        pixel_xy: (S, R, 2) pixel coordinates of each ray.
        ndc: convert the expected point from NDC to world first.
        ndc_hwf: (H0, W0, focal0) of the scene's NDC box when the projecting camera has other intrinsics (a
            viewer's window); None = the box is ``H, W, focal``, as for training and test renders.

    Returns:
        (S, R, 2) induced flow in pixels ([u, v]).
    """
    check_shape(pts_ndc_flowed, "* K 3", "pts_ndc_flowed")
    if weights.shape != pts_ndc_flowed.shape[:-1]:
        raise ValueError(
            f"weights {tuple(weights.shape)} must match pts_ndc_flowed {tuple(pts_ndc_flowed.shape)} as (S, R, K)"
        )
    if pixel_xy.shape != pts_ndc_flowed.shape[:-2] + (2,):
        raise ValueError(
            f"pixel_xy {tuple(pixel_xy.shape)} must be (S, R, 2) for pts_ndc_flowed {tuple(pts_ndc_flowed.shape)}"
        )
    pts_map = torch.sum(weights[..., None] * pts_ndc_flowed, -2)  # (S, R, 3)
    pts_world = ndc_to_world(pts_map, *(ndc_hwf or (H, W, focal))) if ndc else pts_map
    pts_cam = world_to_camera(pts_world, c2w_neighbour)
    half_w = per_scene(W, pts_cam, "W") * 0.5
    half_h = per_scene(H, pts_cam, "H") * 0.5
    principal_point = torch.stack(torch.broadcast_tensors(half_w, half_h), -1)
    if principal_point.dim() > 1:  # per-scene (S, 1, 2) -> (S, 2)
        principal_point = principal_point.reshape(principal_point.shape[0], 2)
    return camera_to_pixels(pts_cam, focal, principal_point) - pixel_xy
