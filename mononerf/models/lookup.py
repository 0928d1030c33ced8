"""Bilinear lookups of a channels-last feature map as weighted sums of its pixel rows: grid_sample's values, faster.

The feature lookups (method.md §2.4) are ``grid_sample(bilinear, padding 'border', align_corners=True)``. Its CPU
kernel works one channel at a time: for 16 points it gathers the four corner values of one channel, then the next
channel, so a (C, h, w) map costs 4·C gathers per 16 points. On a channels-last map the C values of a corner are one
contiguous row, and the lookup of a point is the weighted sum of four rows:

    x = clamp((g_x + 1) · (w − 1)/2, 0, w − 1),  x_w = ⌊x⌋,  wx = x − x_w,  ex = 1 − wx   (y alike: y_n, ny, sy)
    out = ((v_nw·sy·ex + v_ne·sy·wx) + v_sw·ny·ex) + v_se·ny·wx

which is ``F.embedding_bag(mode='sum', per_sample_weights=…)`` over bags of four rows (a corner outside the map
repeats the last row with weight 0, as grid_sample masks it). On the 2-core benchmark machine a 128-channel lookup of
32,768 points in an 80x45 map took 0.8 ms instead of 4.3 ms (benchmarks/README.md).

The two agree bit for bit only where both sum the four products in that order with the same fused multiply-adds, a
property of the build (torch 2.14 on x86 with its AVX2 or AVX-512 kernels: yes; with ATEN_CPU_CAPABILITY=default,
no). :func:`rows_exact` compares them once per process, dtype and device on test maps; where they differ, or
autograd needs the lookup, or the map is not channels-last, the lookups stay with grid_sample (:func:`use_rows`).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

# values per embedding_bag call: each call's (points, C) result stays in the caches until it is copied out; a
# transposing copy (into a channel-major buffer) wants smaller blocks than a row copy (measured, benchmarks/README.md)
BLOCK_FLOATS = 1 << 20
BLOCK_FLOATS_TRANSPOSED = 1 << 18


def corner_rows(grid: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The four corner rows and weights of each point, grid_sample's (bilinear, border, align_corners=True).

    Args:
        grid: (P, 2) normalised (x, y) in [−1, 1] (outside: the border; NaN: 0, as grid_sample).
        h, w: the map's size.
    Returns:
        rows (P, 4) int64 indices into the map's (h·w, C) rows, weights (P, 4) of ``grid``'s dtype;
        corners in the order nw, ne, sw, se.
    """
    def axis(g, n):
        c = torch.nan_to_num((g + 1) * ((n - 1) / 2), nan=0.0).clamp_(0, n - 1)
        lo = c.floor()
        far = c - lo
        return lo.long(), far, 1 - far

    ix, wx, ex = axis(grid[:, 0], w)
    iy, ny, sy = axis(grid[:, 1], h)
    ix1, iy1 = (ix + 1).clamp_(max=w - 1), (iy + 1).clamp_(max=h - 1)
    rows = torch.stack([iy * w + ix, iy * w + ix1, iy1 * w + ix, iy1 * w + ix1], 1)
    weights = torch.stack([sy * ex, sy * wx, ny * ex, ny * wx], 1)
    return rows, weights


def sample_rows(m: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Lookups of a channels-last map at the corners of :func:`corner_rows`, written into ``out``.

    Args:
        m: (1, C, h, w) channels-last map.  rows, weights: (P, 4).
        out: (P, C), any strides (a slice of a bigger buffer, or a transposed view).
    Returns:
        ``out``.
    """
    C = m.shape[1]
    table = m[0].permute(1, 2, 0).reshape(-1, C)  # a view: (h·w, C) rows
    step = max(64, (BLOCK_FLOATS if out.stride(-1) == 1 else BLOCK_FLOATS_TRANSPOSED) // max(C, 1))
    for p in range(0, rows.shape[0], step):
        out[p:p + step] = F.embedding_bag(rows[p:p + step], table, mode="sum", per_sample_weights=weights[p:p + step])
    return out


def _is_channels_last(m: torch.Tensor) -> bool:
    return m.dim() == 4 and m.shape[0] == 1 and m[0].permute(1, 2, 0).is_contiguous()


def use_rows(m: torch.Tensor, grid: torch.Tensor) -> bool:
    """Whether a lookup of ``m`` (1, C, h, w) at ``grid`` may go through :func:`sample_rows`: a channels-last map,
    no autograd through the lookup, and a build where the two agree bit for bit (:func:`rows_exact`)."""
    if torch.is_grad_enabled() and (m.requires_grad or grid.requires_grad):
        return False
    return _is_channels_last(m) and m.dtype == grid.dtype and rows_exact(m.dtype, m.device)


@functools.lru_cache(maxsize=None)
def rows_exact(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether :func:`sample_rows` gives grid_sample's bits here (CPU float32 only; checked once per process on maps
    of 19, 64 and 512 channels, at points inside, on and beyond the border)."""
    if torch.device(device).type != "cpu" or dtype != torch.float32:
        return False
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        grid = torch.rand(257, 2, generator=gen, device="cpu") * 2.6 - 1.3
        grid[:9] = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [0.0, 0.0], [1.0, 0.3],
                                 [0.3, 1.0], [5.0, -5.0], [0.5, 0.25]], device="cpu")
        for c, h, w in ((19, 7, 9), (64, 5, 12), (512, 6, 4)):
            m = torch.randn(1, c, h, w, generator=gen, device="cpu").contiguous(memory_format=torch.channels_last)
            ref = F.grid_sample(m, grid[None, :, None], mode="bilinear", padding_mode="border", align_corners=True)
            got = sample_rows(m, *corner_rows(grid, h, w), torch.empty(grid.shape[0], c, device="cpu"))
            if not torch.equal(got, ref[0, :, :, 0].T):
                return False
    return True
