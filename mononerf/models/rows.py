"""Per-point networks of a render run over cache-sized blocks of points (benchmarks/README.md).

A network call of a render holds ``train.netchunk`` points (65,536: ``netchunk // S`` per scene, as the original's
``batchify``): each of its (points, 256) activations is 64 MB, so every bias copy, activation and residual sum
streams main memory (copies, ReLUs and sums were 7.2 s of a 15.5 s 160x90 frame of two scenes on 2 CPU cores). The
heads and the discrete trajectory treat each point on its own, so running them over blocks of :data:`BLOCK_POINTS`
points (all scenes together) computes the same values with activations that stay in the CPU's caches (a full frame
at the demo size: benchmarks/README.md). What mixes points — the temporal features' reshape quirk (docs/quirks.md, ``latent_temporal_reshape``), the
adaptive Neural ODE — stays outside the blocks, on the whole call.

Only in inference mode (renders): a training step's backward would sum each weight's gradient block by block, in
another order than over the whole call. Each block is a matrix product over fewer rows; with MKL (x86) a row's
result does not depend on how many rows are multiplied with it, so a block render equals the whole-call render to
the bit there (``tests/test_model.py::test_renders_over_blocks_of_points_equal_the_whole_call``); another BLAS may
round differently.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

BLOCK_POINTS = 4096  # points of all scenes: (4096, 256) float32 activations are 4 MB, within a CPU's caches


def _rows(x: Any, sl: slice) -> Any:
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return x[:, sl]
    return x.rows(sl)  # an object of per-point tensors (ProjectedLatent)


def _concat(parts: list, dim: int):
    first = parts[0]
    if isinstance(first, tuple):
        return tuple(_concat([p[i] for p in parts], dim) for i in range(len(first)))
    return torch.cat(parts, dim)


def by_blocks(fn: Callable, per_point: Sequence, per_scene: Sequence = (), block: int | None = None):
    """``fn(*per_point, *per_scene)`` over blocks of at most ``block`` points (of every scene), in inference mode.

    Args:
        fn: a per-point function whose outputs (a tensor or a tuple of them) are (S, P, ...).
        per_point: (S, P, ...) tensors, None, or objects with ``rows(slice)`` (e.g.
            :class:`~mononerf.models.projected.ProjectedLatent`).
        per_scene: (S, ...) tensors (a global code), passed whole to every block: what ``fn`` computes from them
            alone is the same product of S rows as without blocks (a one-row product may round differently).
        block: points in a block, all scenes together (default :data:`BLOCK_POINTS`).
    Returns:
        what ``fn`` returns on the whole inputs. Outside inference mode, or for calls of at most ``block`` points in
        all, ``fn`` is called once on them.
    """
    block = BLOCK_POINTS if block is None else block
    first = next(x for x in per_point if isinstance(x, torch.Tensor))
    S, P = first.shape[:2]
    if not torch.is_inference_mode_enabled() or S * P <= block:
        return fn(*per_point, *per_scene)
    rows = max(1, block // S)  # points per scene in a block
    return _concat([fn(*(_rows(x, slice(a, a + rows)) for x in per_point), *per_scene)
                    for a in range(0, P, rows)], 1)
