"""Volume compositing of raw field outputs along rays (method.md §3.3, §3.4; DynNeRF's raw2outputs).

Dimension vocabulary: ``*`` ray batch dims (usually ``S, R``: scenes, rays), ``K`` samples per ray.
Raw field outputs carry rgb logits in channels 0:3 and the raw density in channel 3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mononerf.utils.checks import check_shape

# Length given to the last interval of every ray ("infinity", method.md §3.3).
FAR_DISTANCE = 1e10
# Added to every (1 - alpha) factor of the transmittance products (method.md §3.3).
TRANSMITTANCE_EPS = 1e-10


def sample_distances(z_vals: Tensor, rays_d: Tensor) -> Tensor:
    """Interval lengths along each ray, scaled by the ray direction's norm (method.md §3.3).

    .. math::
        \\delta_k = (z_{k+1} - z_k)\\,\\lVert d \\rVert,\\qquad \\delta_{K-1} = 10^{10}\\,\\lVert d \\rVert

    Args:
        z_vals: (*, K) sample depths.
        rays_d: (*, 3) ray directions (NDC directions when rendering in NDC).

    Returns:
        (*, K) distances.
    """
    dists = z_vals[..., 1:] - z_vals[..., :-1]
    dists = torch.cat([dists, torch.full_like(z_vals[..., :1], FAR_DISTANCE)], -1)
    return dists * torch.norm(rays_d[..., None, :], dim=-1)


def alpha_from_sigma(sigma: Tensor, dists: Tensor) -> Tensor:
    """Opacity of each interval: :math:`\\alpha = 1 - \\exp(-\\mathrm{relu}(\\sigma)\\,\\delta)` (method.md §3.3)."""
    return 1.0 - torch.exp(-F.relu(sigma) * dists)


def exclusive_transmittance(one_minus_alpha: Tensor) -> Tensor:
    """Transmittance before each sample, with the original's epsilon (method.md §3.3).

    .. math::
        T_k = \\prod_{i<k} \\big(q_i + 10^{-10}\\big),\\qquad T_0 = 1

    Args:
        one_minus_alpha: (*, K) the factors :math:`q_i` (``1 - alpha`` or a product of such).

    Returns:
        (*, K) transmittance.
    """
    ones = torch.ones_like(one_minus_alpha[..., :1])
    return torch.cumprod(torch.cat([ones, one_minus_alpha + TRANSMITTANCE_EPS], -1), -1)[..., :-1]


def render_weights(alpha: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample compositing weights and the transmittance before each sample (nerfacc's
    ``render_weight_from_alpha``, with the original's epsilon; method.md §3.3).

    .. math::
        T_k = \\prod_{i<k} (1 - \\alpha_i + 10^{-10}),\\qquad w_k = \\alpha_k T_k

    Args:
        alpha: (*, K) opacity of each interval.

    Returns:
        (weights, transmittance), each (*, K).
    """
    transmittance = exclusive_transmittance(1.0 - alpha)
    return alpha * transmittance, transmittance


def accumulate_along_rays(weights: Tensor, values: Tensor | None = None) -> Tensor:
    """A per-ray map from per-sample values (nerfacc's ``accumulate_along_rays``): :math:`\\sum_k w_k v_k`.

    Args:
        weights: (*, K) compositing weights (:func:`render_weights`).
        values: None (the opacity :math:`\\sum_k w_k`), (*, K) scalars (e.g. the depths) or (*, K, C) vectors
            (colours, points).

    Returns:
        (*) or (*, C).
    """
    if values is None:
        return torch.sum(weights, -1)
    if values.shape == weights.shape:
        return torch.sum(weights * values, -1)
    return torch.sum(weights[..., None] * values, -2)


def _check_inputs(raw: Tensor, z_vals: Tensor, rays_d: Tensor, name: str) -> None:
    check_shape(raw, "* K C", name)
    check_shape(rays_d, "* 3", "rays_d")
    if raw.shape[:-1] != z_vals.shape or raw.shape[-1] < 4:
        raise ValueError(
            f"{name} must be (*, K, >=4) matching z_vals (*, K) = {tuple(z_vals.shape)}; got {tuple(raw.shape)}"
        )
    if rays_d.shape[:-1] != z_vals.shape[:-1]:
        raise ValueError(f"rays_d {tuple(rays_d.shape)} does not match z_vals {tuple(z_vals.shape)} (*, K)")


def _noise(shape, like: Tensor, std: float, generator: torch.Generator | None) -> Tensor | float:
    if std > 0.0:
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype) * std
    return 0.0


def composite_blended(
    raw_s: Tensor,
    raw_d: Tensor,
    blending: Tensor,
    z_vals: Tensor,
    rays_d: Tensor,
    raw_noise_std: float,
    shared_noise: bool = True,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Composite a static and a dynamic field blended per sample (method.md §3.3, DynNeRF's raw2outputs).

    With :math:`c_x = \\mathrm{sigmoid}(raw_x[0{:}3])`,
    :math:`\\alpha_x = 1 - \\exp(-\\mathrm{relu}(\\sigma_x + \\epsilon)\\delta)` for x in {s, d}, blending b per
    sample and :math:`T(q)` the :func:`exclusive_transmittance`:

    .. math::
        T^d = T(1 - \\alpha_d),\\quad T^s = T(1 - \\alpha_s),\\quad
        T^{full} = T\\big((1 - \\alpha_d b)(1 - \\alpha_s (1 - b))\\big)

        w_d = \\alpha_d T^d,\\quad w_s = \\alpha_s T^s,\\quad w^{dyreg}_d = \\alpha_d b T^d,\\quad
        w_{full} = (\\alpha_d b + \\alpha_s (1 - b)) T^{full}

        C_{full} = \\sum_k T^{full}_k (\\alpha_{d,k} b_k c_{d,k} + \\alpha_{s,k} (1 - b_k) c_{s,k}),\\quad
        C_x = \\sum_k w_{x,k} c_{x,k},\\quad D_x = \\sum_k w_{x,k} z_k,\\quad A_x = \\sum_k w_{x,k}

        \\text{dynamicness} = \\sum_k w_{full,k} b_k,\\qquad \\text{blending\\_map}_k = z_k b_k

    Noise :math:`\\epsilon \\sim \\mathcal N(0, \\text{raw\\_noise\\_std}^2)` is ONE tensor added to both
    densities when ``shared_noise`` (quirk ``shared_sigma_noise``, method.md §8.8) and two independent tensors
    (dynamic drawn first) otherwise; no noise when ``raw_noise_std == 0``. No white background.

    Args:
        raw_s: (*, K, >=4) static raw outputs (rgb logits 0:3, density 3).
        raw_d: (*, K, >=4) dynamic raw outputs.
        blending: (*, K) dynamic blending weight b in [0, 1].
        z_vals: (*, K) sample depths (NDC t).
        rays_d: (*, 3) ray directions.
        raw_noise_std: density noise std (0 at test time).
        shared_noise: the original's single noise tensor (default) vs independent noise.
        generator: optional ``torch.Generator`` for the noise.

    Returns:
        dict with the original's keys :data:`~mononerf.render.outputs.BLENDED_OUTPUT_KEYS`: ``rgb_map_*`` (*, 3),
        ``depth_map_*``/``acc_map_*``/``dynamicness_map`` (*), ``weights_*``/``blending_map`` (*, K),
        for * in {full, s, d}, plus ``rgb_map_dyreg_d`` (*, 3).
    """
    _check_inputs(raw_s, z_vals, rays_d, "raw_s")
    _check_inputs(raw_d, z_vals, rays_d, "raw_d")
    if blending.shape != z_vals.shape:
        raise ValueError(f"blending {tuple(blending.shape)} must match z_vals {tuple(z_vals.shape)} (*, K)")
    dists = sample_distances(z_vals, rays_d)
    rgb_d = torch.sigmoid(raw_d[..., :3])
    rgb_s = torch.sigmoid(raw_s[..., :3])
    noise_d = _noise(raw_d[..., 3].shape, raw_d, raw_noise_std, generator)
    noise_s = noise_d if shared_noise else _noise(raw_s[..., 3].shape, raw_s, raw_noise_std, generator)
    alpha_d = alpha_from_sigma(raw_d[..., 3] + noise_d, dists)
    alpha_s = alpha_from_sigma(raw_s[..., 3] + noise_s, dists)

    # The weights of the three fields, written out in this order: the order in which the autograd graph is built
    # fixes the order in which the gradients of a shared tensor are summed, and the golden run is bit for bit.
    T_d = exclusive_transmittance(1.0 - alpha_d)
    T_s = exclusive_transmittance(1.0 - alpha_s)
    T_full = exclusive_transmittance((1.0 - alpha_d * blending) * (1.0 - alpha_s * (1.0 - blending)))
    weights_d = alpha_d * T_d  # = render_weights(alpha_d)[0]
    weights_dyreg_d = alpha_d * blending * T_d
    weights_s = alpha_s * T_s
    weights_full = (alpha_d * blending + alpha_s * (1.0 - blending)) * T_full

    # the blended colour weighs each field's colour by its own share of the sample (not by weights_full)
    rgb_map_full = torch.sum(
        (T_full * alpha_d * blending)[..., None] * rgb_d + (T_full * alpha_s * (1.0 - blending))[..., None] * rgb_s,
        -2,
    )
    acc = accumulate_along_rays
    return {
        "rgb_map_full": rgb_map_full,
        "depth_map_full": acc(weights_full, z_vals),
        "acc_map_full": acc(weights_full),
        "weights_full": weights_full,
        "rgb_map_s": acc(weights_s, rgb_s),
        "depth_map_s": acc(weights_s, z_vals),
        "acc_map_s": acc(weights_s),
        "weights_s": weights_s,
        "rgb_map_d": acc(weights_d, rgb_d),
        "depth_map_d": acc(weights_d, z_vals),
        "acc_map_d": acc(weights_d),
        "weights_d": weights_d,
        "dynamicness_map": acc(weights_full, blending),
        "blending_map": z_vals * blending,
        "rgb_map_dyreg_d": acc(weights_dyreg_d, rgb_d),
    }


def composite_single(
    raw: Tensor,
    z_vals: Tensor,
    rays_d: Tensor,
    raw_noise_std: float,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Composite one field alone (method.md §3.4, the original's raw2outputs_d).

    Used for the static pretraining pass and the t-1 / t+1 dynamic renders.

    .. math::
        \\alpha = 1 - \\exp(-\\mathrm{relu}(\\sigma + \\epsilon)\\delta),\\quad w = \\alpha\\, T(1 - \\alpha),\\quad
        C = \\sum_k w_k\\, \\mathrm{sigmoid}(raw_k[0{:}3]),\\quad
        D = \\sum_k \\bar w_k \\bar z_k,\\quad A = \\sum_k \\bar w_k

    where the bar means detached: depth and acc carry no gradient, as in the original.

    Args:
        raw: (*, K, >=4) raw outputs (rgb logits 0:3, density 3).
        z_vals: (*, K) sample depths.
        rays_d: (*, 3) ray directions.
        raw_noise_std: density noise std (0 = no noise).
        generator: optional ``torch.Generator`` for the noise.

    Returns:
        dict ``rgb_map`` (*, 3), ``weights`` (*, K), ``depth_map`` (*), ``acc_map`` (*), ``alpha`` (*, K),
        ``rgb`` (*, K, 3).
    """
    _check_inputs(raw, z_vals, rays_d, "raw")
    dists = sample_distances(z_vals, rays_d)
    rgb = torch.sigmoid(raw[..., :3])
    noise = _noise(raw[..., 3].shape, raw, raw_noise_std, generator)
    alpha = alpha_from_sigma(raw[..., 3] + noise, dists)
    weights, _ = render_weights(alpha)
    return {
        "rgb_map": accumulate_along_rays(weights, rgb),
        "weights": weights,
        "depth_map": accumulate_along_rays(weights.detach(), z_vals.detach()),
        "acc_map": accumulate_along_rays(weights.detach()),
        "alpha": alpha,
        "rgb": rgb,
    }
