"""Sample depths along rays (method.md §3.2 step 1; NeRF's coarse stratified sampler).

Dimension vocabulary: ``S`` scenes, ``R`` rays, ``K`` samples per ray, ``*`` any ray batch dims.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sample_along_rays(
    near: float | Tensor,
    far: float | Tensor,
    n_samples: int,
    perturb: bool,
    lindisp: bool,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Depths ``z`` of ``n_samples`` points per ray between ``near`` and ``far`` (method.md §3.2 step 1).

    With :math:`s_k = k/(K-1)`, :math:`k = 0..K-1`:

    .. math::
        z_k = n (1 - s_k) + f s_k \\quad\\text{or, with lindisp,}\\quad
        z_k = \\Big(\\frac{1}{n}(1 - s_k) + \\frac{1}{f} s_k\\Big)^{-1}

    With ``perturb`` each depth is redrawn uniformly inside its interval between mid-points
    (stratified sampling):

    .. math::
        m_k = \\tfrac12 (z_k + z_{k+1}),\\quad
        \\text{lower} = [z_0, m_0, \\dots, m_{K-2}],\\quad \\text{upper} = [m_0, \\dots, m_{K-2}, z_{K-1}],\\quad
        z \\leftarrow \\text{lower} + (\\text{upper} - \\text{lower})\\, u,\\; u \\sim U[0, 1)

    Args:
        near, far: (*) per-ray bounds (e.g. (S, R)), or numbers (then the result is (K,)); in NDC the
            original uses near = 0, far = 1 (method.md §1.2 item 6).
        n_samples: K >= 1.
        perturb: stratified jitter (training); False gives the deterministic grid (testing).
        lindisp: sample linearly in inverse depth instead of depth.
        generator: optional ``torch.Generator`` for the jitter (global RNG when None).

    Returns:
        (*, K) sorted depths in [near, far]; device/dtype from the tensor inputs (float32 CPU if both
        are numbers).
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    ref = near if isinstance(near, Tensor) else far if isinstance(far, Tensor) else None
    device = ref.device if ref is not None else None
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.get_default_dtype()
    near_t = torch.as_tensor(near, device=device, dtype=dtype)[..., None]
    far_t = torch.as_tensor(far, device=device, dtype=dtype)[..., None]
    t_vals = torch.linspace(0.0, 1.0, steps=n_samples, device=device, dtype=dtype)
    if not lindisp:
        z_vals = near_t * (1.0 - t_vals) + far_t * t_vals
    else:
        z_vals = 1.0 / (1.0 / near_t * (1.0 - t_vals) + 1.0 / far_t * t_vals)
    batch = torch.broadcast_shapes(near_t.shape[:-1], far_t.shape[:-1])
    z_vals = z_vals.expand(batch + (n_samples,))
    if perturb:
        mids = 0.5 * (z_vals[..., 1:] + z_vals[..., :-1])
        upper = torch.cat([mids, z_vals[..., -1:]], -1)
        lower = torch.cat([z_vals[..., :1], mids], -1)
        t_rand = torch.rand(z_vals.shape, generator=generator, device=device, dtype=dtype)
        z_vals = lower + (upper - lower) * t_rand
    return z_vals
