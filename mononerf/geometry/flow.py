"""Optical flow induced by rendered scene flow (method.md §3.5; the original's induce_flow / render_3d_point).

Dimension vocabulary: ``S`` scenes, ``R`` rays, ``K`` samples per ray.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mononerf.geometry.cameras import Pinhole
from mononerf.geometry.rays import world_to_camera
from mononerf.utils.checks import check_shape


def induce_flow(
    pts_ndc_flowed: Tensor,
    weights: Tensor,
    c2w_neighbour: Tensor,
    camera: Pinhole,
    pixel_xy: Tensor,
    ndc: bool = True,
    ndc_box: Pinhole | None = None,
) -> Tensor:
    """Pixel flow from a ray's own pixel to where its flowed expected point lands in a neighbour frame (method.md §3.5).

    .. math::
        \\bar p = \\sum_k w_k\\, p^{\\pm}_k \\;(\\text{NDC}),\\quad p_w = \\mathrm{NDC2world}(\\bar p),\\quad
        p_c = R^\\top (p_w - t),\\quad
        \\text{flow} = \\Big(\\frac{x_c}{-z_c} f_x + c_x,\\; -\\frac{y_c}{-z_c} f_y + c_y\\Big) - (x, y)

    where :math:`p^{\\pm}_k` are the samples moved to t±1 (``raw_pts_f`` / ``raw_pts_b``), :math:`w_k` the
    CURRENT-frame dynamic weights (``weights_d``), ``[R | t]`` the neighbour's camera-to-world pose and
    ``(x, y)`` the ray's own pixel (integer grid, method.md §1.1). With ``ndc=False`` the points are taken as
    world points already (the original's ``induce_flow_wo_ndc``). The original's camera is
    ``Pinhole.centred(H, W, focal)``: ``(c_x, c_y) = (W/2, H/2)``, ``f_x = f_y``.

    Args:
        pts_ndc_flowed: (S, R, K, 3) flowed sample positions (NDC when ``ndc``).
        weights: (S, R, K) compositing weights.
        c2w_neighbour: (S, 3, 4) pose of the neighbour frame of each scene (or (3, 4) for unbatched input
            (R, K, 3)).
        camera: the projecting camera's intrinsics (numbers or per-scene (S,)).
        pixel_xy: (S, R, 2) pixel coordinates of each ray.
        ndc: convert the expected point from NDC to world first.
        ndc_box: the scene's NDC box (its training camera) when the projecting camera has other intrinsics (a
            viewer's window); None = ``camera``, as for training and test renders.

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
    pts_world = (ndc_box or camera).ndc_to_world(pts_map) if ndc else pts_map
    return camera.to_pixels(world_to_camera(pts_world, c2w_neighbour)) - pixel_xy
