"""Loss terms of the original, one pure function each (method.md §4.1; the original's ``run_nerf_helpers.py``).

Dimension vocabulary: ``S`` scenes, ``R`` rays per scene, ``K`` samples per ray, ``C`` channels.
Every function takes its device and dtype from its inputs and returns a 0-d tensor unless said otherwise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mononerf.geometry.cameras import Pinhole
from mononerf.geometry.flow import induce_flow
from mononerf.utils.checks import check_shape

# Added to the mask sum of the masked means (method.md §4.1 img2mse / img2mae).
MASK_EPS = 1e-8
# Added inside the logarithm of the entropy (method.md §4.1 entropy).
ENTROPY_EPS = 1e-19
# Added to the prediction's mean absolute deviation only (method.md §4.1 compute_depth_loss).
DEPTH_SCALE_EPS = 1e-9
# Fractions of the samples of a ray that the scene-flow smoothness terms look at (method.md §4.1).
SF_SMOOTH_TEMPORAL_FRACTION = 0.9
SF_SMOOTH_SPATIAL_FRACTION = 0.95


def _masked_mean(err: Tensor, mask: Tensor | None) -> Tensor:
    """``mean(err)``, or ``Σ(err·M) / (ΣM + 1e-8) / C`` with C = ``err.shape[-1]`` (the original's masked mean)."""
    if mask is None:
        return torch.mean(err)
    return torch.sum(err * mask) / (torch.sum(mask) + MASK_EPS) / err.shape[-1]


def img2mse(x: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error, optionally masked (method.md §4.1).

    .. math::
        \\text{no mask: } \\operatorname{mean}((x-y)^2), \\qquad
        \\text{mask } M: \\frac{\\sum (x-y)^2 M}{(\\sum M + 10^{-8})\\, C}

    with C = ``x.shape[-1]``: the mask (e.g. (S, R, 1)) is summed without broadcasting over the C channels, so
    the result is a mean per masked element.

    Args:
        x, y: (*, C).
        mask: None or broadcastable to (*, C), typically (*, 1).
    """
    return _masked_mean((x - y) ** 2, mask)


def img2mae(x: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error, optionally masked: :func:`img2mse` with ``|x - y|`` (method.md §4.1).

    .. math::
        \\frac{\\sum |x-y|\\, M}{(\\sum M + 10^{-8})\\, C}

    Args:
        x, y: (*, C).
        mask: None or broadcastable to (*, C), typically (*, 1).
    """
    return _masked_mean(torch.abs(x - y), mask)


def L1(x: Tensor, mask: Tensor | None = None) -> Tensor:  # noqa: N802 - the original's name
    """``mean |x|`` (masked like :func:`img2mse`; method.md §4.1). Any shape."""
    return _masked_mean(torch.abs(x), mask)


def L2(x: Tensor, mask: Tensor | None = None) -> Tensor:  # noqa: N802 - the original's name
    """``mean x²`` (masked like :func:`img2mse`; method.md §4.1). Any shape."""
    return _masked_mean(x**2, mask)


def entropy(x: Tensor, *, batch_normalisation: bool = True) -> Tensor:
    """Entropy-style sparsity of per-sample values in [0, 1] (method.md §4.1, §4.3 #13, quirk §8.11).

    .. math::
        -\\frac{\\sum x \\log(x + 10^{-19})}{Z}

    ``batch_normalisation`` (quirk ``entropy_batch_normalisation``): True → Z = ``x.shape[0] · x.shape[1]``
    (for (S, R, K): a sum over the samples of a ray, averaged over all rays of all scenes — the original);
    False → Z = ``x.numel()`` (a mean per sample).

    Args:
        x: (S, R, K) weights or blending values.
    """
    if x.dim() < 2:
        raise ValueError(f"entropy expects at least 2 dims, e.g. (S, R, K); got shape {tuple(x.shape)}")
    total = -torch.sum(x * torch.log(x + ENTROPY_EPS))
    norm = x.shape[0] * x.shape[1] if batch_normalisation else x.numel()
    return total / norm


def mse2psnr(mse: Tensor) -> Tensor:
    """PSNR of a mean squared error of [0, 1] images: ``-10 log10(mse)`` (method.md §4.1); on the input's device."""
    return -10.0 * torch.log(mse) / math.log(10.0)


def compute_depth_loss(pred_depth: Tensor, gt_depth: Tensor) -> Tensor:
    """Scale- and shift-invariant depth loss (method.md §4.1, §4.3 #17).

    Each tensor is normalised by its median ``t`` and mean absolute deviation ``s`` over ALL its elements jointly
    (across scenes, method.md §8.10); the median is the LOWER median of an even count (as ``torch.median``):

    .. math::
        \\hat d = \\frac{d - t_d}{s_d + 10^{-9}},\\quad \\hat g = \\frac{g - t_g}{s_g},\\quad
        \\text{loss} = \\operatorname{mean}((\\hat d - \\hat g)^2)

    The eps is on the prediction's scale only (a constant ``gt_depth`` gives NaN, as in the original).

    Args:
        pred_depth: (S, R) rendered depth (``depth_map_d``).
        gt_depth: (S, R) target (the trainer passes ``-disparity``).
    """
    if pred_depth.shape != gt_depth.shape:
        raise ValueError(f"pred_depth {tuple(pred_depth.shape)} and gt_depth {tuple(gt_depth.shape)} must match")
    t_p = torch.median(pred_depth)
    s_p = torch.mean(torch.abs(pred_depth - t_p)) + DEPTH_SCALE_EPS
    t_g = torch.median(gt_depth)
    s_g = torch.mean(torch.abs(gt_depth - t_g))
    return torch.mean(((pred_depth - t_p) / s_p - (gt_depth - t_g) / s_g) ** 2)


def _to_world(pts: Tensor, camera: Pinhole, ndc: bool) -> Tensor:
    return camera.ndc_to_world(pts) if ndc else pts


def compute_sf_smooth_loss(
    pts: Tensor, pts_f: Tensor, pts_b: Tensor, camera: Pinhole, *, ndc: bool = True,
) -> Tensor:
    """Temporal scene-flow smoothness: forward and backward world scene flow should cancel (method.md §4.1, §4.3 #9).

    Only the first ``int(0.9·K)`` samples of each ray are used. With ``ndc`` the points are mapped NDC → world
    (:func:`mononerf.geometry.rays.ndc_to_world`, near 1) and the loss is L1 (MonoNeRF; DynNeRF used L2):

    .. math::
        \\operatorname{mean}\\big|\\,(p^f_w - p_w) + (p^b_w - p_w)\\,\\big|

    ``ndc=False`` (the original's ``_wo_ndc`` variant for world-space sampling) uses the raw points and L2.

    Args:
        pts, pts_f, pts_b: (S, R, K, 3) sample positions at t and their positions at t+1 / t-1 (NDC if ``ndc``).
        camera: the scenes' training intrinsics (their NDC box; numbers or per-scene (S,) fields).
    """
    check_shape(pts, "S R K 3", "pts")
    if pts_f.shape != pts.shape or pts_b.shape != pts.shape:
        raise ValueError(f"pts {tuple(pts.shape)}, pts_f {tuple(pts_f.shape)}, pts_b {tuple(pts_b.shape)} must match")
    k = int(pts.shape[2] * SF_SMOOTH_TEMPORAL_FRACTION)
    p = _to_world(pts[..., :k, :], camera, ndc)
    p_f = _to_world(pts_f[..., :k, :], camera, ndc)
    p_b = _to_world(pts_b[..., :k, :], camera, ndc)
    residual = (p_f - p) + (p_b - p)
    return L1(residual) if ndc else L2(residual)


def compute_sf_smooth_s_loss(
    pts1: Tensor, pts2: Tensor, camera: Pinhole, *, ndc: bool = True
) -> Tensor:
    """Spatial scene-flow smoothness along a ray (NSFF; method.md §4.1, §4.3 #10).

    On the first ``int(0.95·K)`` samples, the world scene flow ``sf = world(pts1) - world(pts2)`` should vary
    little between adjacent samples:

    .. math::
        \\operatorname{mean}\\big|\\, sf_k - sf_{k+1} \\,\\big|,\\quad k = 0 .. \\lfloor 0.95K \\rfloor - 2

    ``ndc=False`` skips the NDC → world mapping (the original's ``_wo_ndc`` variant, still L1).

    Args:
        pts1, pts2: (S, R, K, 3) (NDC if ``ndc``).
        camera: the scenes' training intrinsics (their NDC box).
    """
    check_shape(pts1, "S R K 3", "pts1")
    if pts2.shape != pts1.shape:
        raise ValueError(f"pts1 {tuple(pts1.shape)} and pts2 {tuple(pts2.shape)} must match")
    k = int(pts1.shape[2] * SF_SMOOTH_SPATIAL_FRACTION)
    sf = _to_world(pts1[..., :k, :], camera, ndc) - _to_world(pts2[..., :k, :], camera, ndc)
    return L1(sf[..., :-1, :] - sf[..., 1:, :])


def compute_depth_blending_loss(
    gt_invdepth: Tensor,
    z_vals: Tensor,
    blending_map: Tensor,
    *,
    near: float,
    far: float,
    min_depth: float | Tensor | None = None,
    max_depth: float | Tensor | None = None,
    mask: Tensor | None = None,
    thickness: float = 0.06,
    in_place: bool = True,
) -> Tensor:
    """Depth-blending loss: blending should sit at the depth of the monocular depth map (method.md §4.1, §4.3 #14).

    .. math::
        g = \\frac{d - d_{min}}{d_{max} - d_{min}} (far - near) + near,\\qquad
        \\tau_k = \\begin{cases} z_k & |z_k - g| \\le \\text{thickness} \\\\ 0 & \\text{otherwise}\\end{cases},
        \\qquad \\text{loss} = \\text{img2mse}(\\tau, \\text{blending\\_map}, M)

    The trainer calls it with the disparity as ``gt_invdepth``, ``min_depth = max(disparity)`` and
    ``max_depth = min(disparity)`` over the WHOLE batch, near 0, far 1 — i.e. ``g = (max - d) / (max - min)``,
    which grows with distance like NDC depth. ``min_depth`` / ``max_depth`` default to ``gt_invdepth.min()`` /
    ``.max()``. ``blending_map`` is ``z · blending`` per sample, ``mask`` the dynamic-ray mask (S, R, 1), so the
    result is a mean over the masked rays and their K samples.

    ``in_place`` (quirk ``depth_target_in_place``, method.md §8.4): True → exactly the original's side effects:
    ``gt_invdepth`` IS REWRITTEN IN PLACE to ``g`` (explicit ``sub_/div_/mul_/add_`` on the passed tensor, which
    the depth loss then reads), and ``z_vals`` is zeroed in place outside the band (it becomes the target ``τ``);
    ``z_vals`` must therefore not be a tensor that autograd saved (the renderer returns a fresh copy).
    False → both inputs are left untouched (same numbers).

    Args:
        gt_invdepth: (S, R) disparity of each ray.
        z_vals: (S, R, K) sample depths (NDC t).
        blending_map: (S, R, K).
        near, far: the sampling bounds (0 and 1 in NDC).
        min_depth, max_depth: values mapped to ``near`` / ``far``.
        mask: None or (S, R, 1).
        thickness: half-width of the band around ``g`` (``info.blending_thickness``).
        in_place: see above.
    """
    check_shape(z_vals, "S R K", "z_vals")
    if gt_invdepth.shape != z_vals.shape[:-1] or blending_map.shape != z_vals.shape:
        raise ValueError(
            f"expected gt_invdepth (S, R), z_vals and blending_map (S, R, K); got {tuple(gt_invdepth.shape)}, "
            f"{tuple(z_vals.shape)}, {tuple(blending_map.shape)}"
        )
    if min_depth is None:
        min_depth = gt_invdepth.min()
    if max_depth is None:
        max_depth = gt_invdepth.max()
    if in_place:
        gt = gt_invdepth
        gt.sub_(min_depth)
        gt.div_(max_depth - min_depth)
        gt.mul_(far - near)
        gt.add_(near)
    else:
        gt = (gt_invdepth - min_depth) / (max_depth - min_depth) * (far - near) + near
    outside = torch.abs(z_vals - gt[..., None]) > thickness
    target = z_vals.masked_fill_(outside, 0.0) if in_place else z_vals.masked_fill(outside, 0.0)
    return img2mse(target, blending_map, mask)


def masked_mae_per_scene(x: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    """:func:`img2mae` with a mask, computed for each scene separately (the induced-flow terms, method.md §4.3 #6-7).

    .. math::
        \\ell_s = \\frac{\\sum_r |x_{sr} - y_{sr}|\\, M_{sr}}{(\\sum_r M_{sr} + 10^{-8})\\, C}

    Args:
        x, y: (S, R, C) induced and ground-truth flow (C = 2: divided by the 2 channels as the original).
        mask: (S, R, 1) flow consistency mask.

    Returns:
        (S,) one loss per scene.
    """
    check_shape(x, "S R C", "x")
    if y.shape != x.shape or mask.shape != x.shape[:-1] + (1,):
        raise ValueError(f"expected x, y (S, R, C) and mask (S, R, 1); got {tuple(x.shape)}, {tuple(y.shape)}, "
                         f"{tuple(mask.shape)}")
    err = torch.sum(torch.abs(x - y) * mask, dim=(1, 2))
    return err / (torch.sum(mask, dim=(1, 2)) + MASK_EPS) / x.shape[-1]


def induced_flow_loss(
    pts_flowed: Tensor,
    weights: Tensor,
    c2w_neighbour: Tensor,
    camera: Pinhole,
    pixel_xy: Tensor,
    gt_flow: Tensor,
    gt_mask: Tensor,
    *,
    ndc: bool = True,
) -> Tensor:
    """Optical-flow loss of the flow induced by the rendered scene flow, per scene (method.md §3.5, §4.3 #6-7).

    ``induced = induce_flow(pts_flowed, weights, c2w_neighbour, ...)`` (:func:`mononerf.geometry.flow.induce_flow`),
    then :func:`masked_mae_per_scene` against the RAFT flow with its consistency mask.

    Args:
        pts_flowed: (S, R, K, 3) samples moved to the neighbour time (``raw_pts_f`` / ``raw_pts_b``).
        weights: (S, R, K) current-frame dynamic weights (``weights_d``).
        c2w_neighbour: (S, 3, 4) pose of each scene's neighbour frame.
        camera: the scenes' training intrinsics (numbers or per-scene (S,) fields).
        pixel_xy: (S, R, 2) the rays' pixel coordinates (``grid[..., 0:2]``).
        gt_flow: (S, R, 2) ground-truth flow (``grid[..., 2:4]`` forward, ``[..., 5:7]`` backward).
        gt_mask: (S, R, 1) its mask (``grid[..., 4:5]`` / ``[..., 7:8]``).
        ndc: points are NDC (False: world, the original's ``induce_flow_wo_ndc``).

    Returns:
        (S,) loss of each scene.
    """
    induced = induce_flow(pts_flowed, weights, c2w_neighbour, camera, pixel_xy, ndc=ndc)
    return masked_mae_per_scene(induced, gt_flow, gt_mask)
