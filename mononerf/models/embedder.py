"""NeRF positional encoding (method.md §2.5)."""

from __future__ import annotations

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """``[x, sin(f_0 x), cos(f_0 x), …, sin(f_{L-1} x), cos(f_{L-1} x)]`` with ``f_k = 2^k`` (no π factor).

    The whole input vector is encoded per frequency, so for (x, y, z, t) the layout is
    ``[x, y, z, t, sin(f0·xyzt), cos(f0·xyzt), sin(f1·xyzt), …]`` (method.md §2.5).

    Args:
        d_in: input width (4 for xyzt, 3 for view directions).
        num_freqs: L (``multires`` = 10 for points, ``multires_views`` = 4 for directions).
    Shapes:
        (..., d_in) → (..., d_out) with ``d_out = d_in · (1 + 2L)``.
    """

    def __init__(self, d_in: int, num_freqs: int):
        super().__init__()
        self.d_in = d_in
        self.num_freqs = num_freqs
        self.d_out = d_in * (1 + 2 * num_freqs)
        freqs = 2.0 ** torch.linspace(0.0, num_freqs - 1, num_freqs) if num_freqs > 0 else torch.zeros(0)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_freqs == 0:
            return x
        scaled = x[..., None, :] * self.freqs.to(x.dtype)[:, None]  # (..., L, d_in)
        parts = torch.stack([torch.sin(scaled), torch.cos(scaled)], dim=-2)  # (..., L, 2, d_in)
        return torch.cat([x, parts.flatten(-3)], dim=-1)


def drop_time_terms(embedded_xyzt: torch.Tensor) -> torch.Tensor:
    """The static head's 63-d input: the 84-d xyzt embedding with every t-term removed (method.md §2.5).

    (..., 4·(1+2L)) → (..., 3·(1+2L)): view as (..., 1+2L, 4) and keep the first three entries of each group.
    """
    groups = embedded_xyzt.shape[-1] // 4
    return embedded_xyzt.unflatten(-1, (groups, 4))[..., :3].flatten(-2)
