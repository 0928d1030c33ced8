"""The renders' speed-up, inference only: the heads' first latent layers folded into the feature maps.

A head's first latent layers (``lin_z``, method.md §2.9–2.10) are linear, and bilinear lookups are weighted sums of
feature vectors, so the two commute: ``lin_z(sample(F)) = sample(F·Wᵀ) + b``. A full-frame render reads ~8 M
points against a 240x135 map; multiplying each frame's maps once (:class:`ProjectedVolume`) instead of every point
is the same arithmetic up to float summation order. The heads have one forward (training's); here

- :func:`latent_projection` is the weight a head's latent layers fold into (None where they are not linear in the
  latent alone: SPADE scaling, concatenation fusion, zeroed features),
- :func:`fold_latent_projections` gives a :class:`~mononerf.models.mononerf.SceneFeatures` whose volumes carry
  the projected maps (under ``torch.inference_mode()``; make new ones after the weights change),
- :class:`ProjectedLatent` stands in for a head's latent layers, given the lookups of the projected maps: the
  ``inject`` argument of the heads' forward,
- :class:`Workspace` holds the lookups' buffers from one network call of a render to the next.
"""

from __future__ import annotations

import math
import threading
from dataclasses import replace

import torch

from mononerf.models.features import FeatureVolume, _frame_maps
from mononerf.models.heads import DynamicHead, StaticHead
from mononerf.models.lookup import rows_exact


class Workspace:
    """The buffers a render's network call writes its lookups into, kept for the next call (inference only).

    A render's call of 65,536 points writes ~0.8 GB of lookups (the t±1 features of the reshape quirk, the projected
    maps' lookups). Fresh memory costs a page fault per page when first written, and on a virtual machine whose
    host reclaims free memory, far more than the copy itself (~0.9 s of a 160x90 frame of two scenes on the 2-core
    benchmark machine, benchmarks/README.md); kept buffers are written in place. The values are the same.

    :meth:`empty` gives an uninitialised tensor of any shape from the buffer named ``name`` (grown when too small),
    one set per thread (a finished thread's set is dropped when a buffer is next made). Each buffer serves one use at
    a time: its previous contents are dead once a name is asked for again. One per
    :class:`~mononerf.render.field.FieldRenderer`, emptied by a training step (:meth:`clear`).
    """

    def __init__(self):
        self._buffers: dict[tuple[str, int], torch.Tensor] = {}

    def empty(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """An uninitialised (contiguous) tensor of ``shape`` from buffer ``name``."""
        key, n, device = (name, threading.get_ident()), math.prod(shape), torch.device(device)
        buf = self._buffers.get(key)
        fits = (buf is not None and buf.numel() >= n and buf.dtype == dtype and buf.device.type == device.type
                and device.index in (None, buf.device.index))
        if not fits:
            self._buffers.pop(key, None)  # the old one freed before the new one is made
            alive = {t.ident for t in threading.enumerate()}  # a finished thread's buffers (a viewer's client) go
            for k in [k for k in self._buffers if k[1] not in alive]:
                del self._buffers[k]
            buf = self._buffers[key] = torch.empty(n, dtype=dtype, device=device)
        return buf[:n].view(shape)

    def clear(self) -> None:
        self._buffers.clear()

    @property
    def nbytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self._buffers.values())


class ProjectedVolume:
    """A feature volume multiplied by a weight matrix, one frame at a time, when a lookup first reads that frame.

    Bilinear sampling (and the volume's own bilinear resizing) is a weighted sum of feature vectors, so a linear map
    without bias commutes with it exactly: ``sample(F)·Wᵀ = sample(F·Wᵀ)``. Applied to the first linear layers of a
    head (method.md §2.9–2.10: ``lin_z``), each frame map is multiplied once instead of at every sample point, as
    full-frame renders need (8 M samples against a 240x135 map). Inference only: the maps are cached for the
    lifetime of this object (two frames per scene, the oldest dropped first), which must not outlive the weights
    (make one per render).

    Args:
        volume: (S, C, T, h, w) tensor or :class:`FeatureVolume`.
        weight: (O, C).
        workspace: where the lookups of a render's network calls are written (:class:`Workspace`; None: fresh
            tensors).
    """

    def __init__(self, volume: "torch.Tensor | FeatureVolume", weight: torch.Tensor,
                 workspace: Workspace | None = None):
        if weight.dim() != 2 or weight.shape[1] != volume.shape[1]:
            raise ValueError(f"weight {tuple(weight.shape)} does not match the volume's {volume.shape[1]} channels")
        self.volume, self.weight, self.workspace = volume, weight, workspace
        # a query reads one frame per scene: room for two frames per scene, the oldest dropped first
        self.capacity = 2 * int(volume.shape[0])
        self._maps: dict[tuple[int, int], list[torch.Tensor]] = {}

    @property
    def shape(self) -> torch.Size:
        """(S, O, T, h, w)."""
        s, _, t, h, w = self.volume.shape
        return torch.Size((s, self.weight.shape[0], t, h, w))

    @property
    def device(self) -> torch.device:
        return self.weight.device

    def empty(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """An uninitialised tensor for a render's lookups: from the :class:`Workspace` when there is one."""
        if self.workspace is None:
            return torch.empty(shape, dtype=self.weight.dtype, device=self.weight.device)
        return self.workspace.empty(name, shape, self.weight.dtype, self.weight.device)

    def lookup_buffer(self, name: str, scenes: int, points: int) -> torch.Tensor:
        """An (S, P, O) tensor for a render's lookups of this volume (buffer ``name``), in the layout the lookups
        come in: point-major where they are read from the maps' rows (models/lookup.py), else an (S, O, P) buffer
        seen as (S, P, O), since grid_sample gives each scene's lookups as (O, P) (a transposing copy of them took
        0.59 s of a 160x90 frame's 9 s). The heads' blocks (models/rows.py) read either in the caches; the same
        values."""
        o = self.weight.shape[0]
        if rows_exact(self.weight.dtype, self.weight.device):
            return self.empty(name, (scenes, points, o))
        return self.empty(name, (scenes, o, points)).transpose(1, 2)

    def frame_maps(self, s: int, f: int) -> list[torch.Tensor]:
        """Scene ``s``, frame ``f``: ``[(1, O, h, w)]`` (channels-last), computed on first use."""
        key = (int(s), int(f))
        if key not in self._maps:
            while len(self._maps) >= self.capacity:
                self._maps.pop(next(iter(self._maps)))
            out, c0 = None, 0
            for m in _frame_maps(self.volume, s, f):
                c = m.shape[1]
                y = torch.matmul(m[0].permute(1, 2, 0), self.weight[:, c0:c0 + c].T)  # (h, w, O)
                out = y if out is None else out.add_(y)
                c0 += c
            self._maps[key] = [out.permute(2, 0, 1)[None]]
        return self._maps[key]


def latent_projection(head: StaticHead | DynamicHead) -> torch.Tensor | None:
    """The head's stacked latent-layer weights for :class:`ProjectedVolume` (``head.latent_projection()``: each head
    owns its fold next to its ``add_latent``)."""
    return head.latent_projection()


class ProjectedLatent:
    """A head's latent layers for lookups of its projected maps: ``inject(b, h)`` of the heads' forward.

    Args:
        head: the :class:`StaticHead` or :class:`DynamicHead` whose :func:`latent_projection` made the maps.
        latent_proj: (S, P, n·d_hidden) lookups of the projected volume at the points.
        latent_temporal: (S, P, 2, d_latent) raw features at t−1/t+1 (dynamic head with temporal features).
    """

    def __init__(self, head: StaticHead | DynamicHead, latent_proj: torch.Tensor,
                 latent_temporal: torch.Tensor | None = None):
        self.head, self.latent_proj, self.latent_temporal = head, latent_proj, latent_temporal

    def rows(self, sl: slice) -> "ProjectedLatent":
        """The points ``sl`` of every scene, for :func:`~mononerf.models.rows.by_blocks`."""
        lt = self.latent_temporal
        return ProjectedLatent(self.head, self.latent_proj[:, sl], None if lt is None else lt[:, sl])

    def __call__(self, b: int, h: torch.Tensor) -> torch.Tensor:
        """Block ``b``'s latent term added to ``h`` (S, P, d_hidden), as the head's own layers would add it
        (``head.add_projected``)."""
        head = self.head
        if b >= len(head.lin_z):
            return h
        d = head.lin_z[b].out_features
        return head.add_projected(self.latent_proj[..., b * d:(b + 1) * d], b, h, self.latent_temporal)


def fold_latent_projections(model, feats, points_per_frame: int, workspace: Workspace | None = None):
    """``feats`` (:class:`~mononerf.models.mononerf.SceneFeatures`) for a render of ``points_per_frame`` sample
    points per scene and frame under ``model``'s current weights: with the heads' first latent layers applied to the
    feature maps (:class:`ProjectedVolume`) when that costs less than applying them per point. Exact up to float
    summation order. No autograd: call it under ``torch.inference_mode()`` or ``no_grad``, and make new ones after
    the weights change. ``workspace``: where the network calls write their lookups (:class:`Workspace`).

    Returns ``feats`` itself when nothing is worth projecting (small renders, heads without a projection).
    """
    if torch.is_grad_enabled():
        raise RuntimeError("fold_latent_projections is for renders: call it under torch.inference_mode()")
    plan = projection_plan(model, feats, points_per_frame)
    if not any(plan):
        return feats
    static_volume = feats.latent2d if model.encoder2d is not None else feats.latent
    dyn = ProjectedVolume(feats.latent, latent_projection(model.mlp_dynamic), workspace) if plan[0] else None
    sta = ProjectedVolume(static_volume, latent_projection(model.mlp_static), workspace) if plan[1] else None
    return replace(feats, dynamic_proj=dyn, static_proj=sta)


def projection_plan(model, feats, points_per_frame: int) -> tuple[bool, bool]:
    """(dynamic, static): which heads' feature maps :func:`fold_latent_projections` projects for renders of
    ``points_per_frame`` points per scene and frame (the projected maps do not depend on that number otherwise)."""
    static_volume = feats.latent2d if model.encoder2d is not None else feats.latent

    def worth(volume, head):
        # projecting a frame costs C·O per map pixel; it saves C·O per point
        return (volume is not None and points_per_frame > 2 * volume.shape[-2] * volume.shape[-1]
                and latent_projection(head) is not None)

    return worth(feats.latent, model.mlp_dynamic), worth(static_volume, model.mlp_static)
