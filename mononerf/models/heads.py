"""Static and dynamic NeRF heads (method.md §2.9 ResnetFC, §2.10 ResnetFC_static).

Inputs are passed as separate tensors instead of one concatenated vector: the original concatenates
``[xyzt-embedding, latent, global code repeated per point]`` and splits it again inside the head; the
products are identical, without the per-point copy of the global code (its projection is broadcast).
P = points per scene (rays × samples); S = scenes.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mononerf.models.blocks import ResnetBlockFC
from mononerf.models.outputs import pack_dynamic, pack_static

Injection = Callable[[int, torch.Tensor], torch.Tensor]  # (block b, hidden (S, P, d)) -> hidden with b's latent term


def linear_split(layer: nn.Linear, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``layer(cat[x, g])`` for per-point ``x`` (S, P, A) and per-scene ``g`` (S, B), broadcasting ``g``'s part.

    Identical to ``layer(torch.cat([x, g[:, None].expand(-1, P, -1)], -1))`` up to float summation order.
    """
    a = x.shape[-1]
    w = layer.weight
    # the sum in place on the fresh product (a product's backward does not read its output)
    return F.linear(x, w[:, :a]).add_(F.linear(g, w[:, a:], layer.bias)[:, None, :])


def plus_bias_like(proj: torch.Tensor, bias: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``proj + bias`` written in the memory layout of ``like`` (S, P, d): a render's lookups may be channel-major
    (grid_sample's, models/projected.py), and a sum that kept their layout would hand the rest of the head transposed
    activations (each product would copy them first, each residual sum would stride across them). The same values,
    and the dtype of ``proj + bias`` (under autocast ``like`` may be narrower)."""
    return torch.add(proj, bias, out=torch.empty_like(like, dtype=torch.result_type(proj, bias)))


def pair_mean(x: torch.Tensor) -> torch.Tensor:
    """``x.mean(dim=-2)`` of (…, 2, C) as (x₀ + x₁) / 2: the same sum and division (the same bits), as one sum instead
    of a reduction over a middle dimension, whose zero-filled output and accumulation took 0.17 s of a 160x90 frame
    of two scenes (renders' profile, benchmarks/README.md)."""
    return torch.add(x[..., 0, :], x[..., 1, :]).div_(2)


class ViewHead(nn.Module):
    """NeRF-style colour head: alpha from features, rgb from ``[feature_linear(h), viewdirs]`` (method.md §2.10)."""

    def __init__(self, d_hidden: int, d_views: int):
        super().__init__()
        self.alpha_linear = nn.Linear(d_hidden, 1)
        self.feature_linear = nn.Linear(d_hidden, d_hidden)
        self.views_linears = nn.ModuleList([nn.Linear(d_views + d_hidden, d_hidden // 2)])
        self.rgb_linear = nn.Linear(d_hidden // 2, 3)

    def forward(self, h: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
        """(…, d_hidden), (…, d_views) → (…, 4) raw [rgb, sigma]."""
        v = F.relu(self.views_linears[0](torch.cat([self.feature_linear(h), views], -1)))
        return torch.cat([self.rgb_linear(v), self.alpha_linear(h)], -1)


class StaticHead(nn.Module):
    """ResnetFC_static (method.md §2.10): pixel-aligned ResNet18 features added in the first ``combine_layer`` blocks.

    Output (S, P, 5): raw rgb (3), raw sigma (1), blending (1, sigmoid; unused with DyNeRF blending).
    ``zero_features``: the latent terms are zeros, a plain NeRF (the original's ``origin_pipeline`` key).
    """

    def __init__(self, d_pts: int = 63, d_views: int = 27, d_latent: int = 512, d_hidden: int = 256,
                 n_blocks: int = 5, combine_layer: int = 3, beta: float = 0.0, use_viewdirs: bool = True,
                 pixelnerf_mode: bool = True, zero_features: bool = False, use_spade: bool = False):
        super().__init__()
        self.d_latent = d_latent if pixelnerf_mode else 0
        self.combine_layer = combine_layer
        self.zero_features = zero_features
        self.use_spade = use_spade
        self.lin_in = nn.Linear(d_pts, d_hidden)
        self.blocks = nn.ModuleList([ResnetBlockFC(d_hidden, beta=beta) for _ in range(n_blocks)])
        n_lin_z = min(combine_layer, n_blocks)
        if self.d_latent:
            self.lin_z = nn.ModuleList([nn.Linear(self.d_latent, d_hidden) for _ in range(n_lin_z)])
            if use_spade:
                self.scale_z = nn.ModuleList([nn.Linear(self.d_latent, d_hidden) for _ in range(n_lin_z)])
        self.view_head = ViewHead(d_hidden, d_views) if use_viewdirs else None
        if not use_viewdirs:
            self.lin_out = nn.Linear(d_hidden, 4)
        self.weight_linear = nn.Linear(d_hidden, 1)

    def latent_projection(self) -> torch.Tensor | None:
        """The weights of the per-block latent layers ``lin_z`` stacked, (n·d_hidden, d_latent): what a render applies
        to the feature maps once (:mod:`~mononerf.models.projected`), or None where the latent enters otherwise."""
        if not self.d_latent or self.use_spade or self.zero_features:
            return None
        return torch.cat([lin.weight for lin in self.lin_z], 0)

    def add_projected(self, proj: torch.Tensor, b: int, h: torch.Tensor, latent_temporal=None) -> torch.Tensor:
        """:meth:`add_latent` from block ``b``'s slice ``proj`` (S, P, d_hidden) of the projected maps' lookups."""
        if b >= len(self.lin_z):
            return h
        return plus_bias_like(proj, self.lin_z[b].bias, h).add_(h)  # h + (proj + b_z): addition commutes

    def add_latent(self, latent: torch.Tensor | None, b: int, h: torch.Tensor) -> torch.Tensor:
        """Block ``b``'s latent term added to ``h`` (S, P, d_hidden); latent (S, P, d_latent)."""
        if not self.d_latent or b >= self.combine_layer:
            return h
        tz = self.lin_z[b](latent)
        if self.zero_features:
            tz = torch.zeros_like(tz)
        return self.scale_z[b](latent) * h + tz if self.use_spade else h + tz

    def forward(self, pts: torch.Tensor, views: torch.Tensor, latent: torch.Tensor | None,
                inject: Injection | None = None) -> torch.Tensor:
        """pts (S, P, 63), views (S, P, 27), latent (S, P, 512) → (S, P, 5).

        ``inject(b, h)``: adds block b's latent term in place of :meth:`add_latent` (renders:
        :class:`~mononerf.models.projected.ProjectedLatent`, ``latent`` unused).
        """
        add = inject if inject is not None else partial(self.add_latent, latent)
        h = F.relu(self.lin_in(pts))  # no L2 normalisation in the static head (method.md §2.10)
        for b, block in enumerate(self.blocks):
            h = block(add(b, h))
        blend = torch.sigmoid(self.weight_linear(h))
        out = self.view_head(h, views) if self.view_head is not None else self.lin_out(h)
        return pack_static(out, blend)


class DynamicHead(nn.Module):
    """ResnetFC (method.md §2.9): the dynamic NeRF, whose first layers are shared with the velocity field (§2.8).

    Shared with :mod:`mononerf.models.trajectory`: ``lin_in``, ``global_blocks``, ``lin_global_z``, ``sf_linear``;
    the global video code comes from ``ode_fc`` (Linear 2048→4096, ReLU, Linear 4096→``d_global``) over the
    average-pooled SlowOnly layer4 features.

    Output (S, P, 11): raw rgb (3), raw sigma (1), scene-flow positions at t−1 and t+1 (6), blending (1).
    ``zero_features``: the latent terms and the global video code are zeros (the original's ``origin_pipeline`` key);
    ``flow_guided_feat`` false zeroes the latent terms only (not the velocity field's global code:
    ``MonoNeRF.feat_guided_flow`` switches that).
    """

    def __init__(self, d_pts: int = 84, d_views: int = 27, d_latent: int = 832, d_global: int = 256,
                 d_flow_latent: int = 2048, d_hidden: int = 256, n_blocks: int = 3, n_global_blocks: int = 2,
                 combine_layer: int = 3, beta: float = 0.0, use_viewdirs: bool = False,
                 use_temporal_feature: bool = True, temporal_proportion: float = 1.0,
                 feature_fuse_mode: str = "addition", zero_features: bool = False, flow_guided_feat: bool = True,
                 use_spade: bool = False):
        super().__init__()
        if feature_fuse_mode not in ("addition", "concat"):
            raise ValueError(f"feature_fuse_mode must be 'addition' or 'concat', got {feature_fuse_mode!r}")
        self.d_hidden = d_hidden
        self.n_global_blocks = n_global_blocks
        self.combine_layer = combine_layer
        self.use_temporal_feature = use_temporal_feature
        self.feature_fuse_mode = feature_fuse_mode
        self.zero_features = zero_features
        self.flow_guided_feat = flow_guided_feat
        self.use_spade = use_spade
        self.lin_in = nn.Linear(d_pts, d_hidden)
        self.global_blocks = nn.ModuleList([ResnetBlockFC(d_hidden, beta=beta) for _ in range(n_global_blocks)])
        self.blocks = nn.ModuleList([ResnetBlockFC(d_hidden, beta=beta) for _ in range(n_blocks)])
        n_lin_z = min(combine_layer, n_blocks)
        self.lin_z = nn.ModuleList([nn.Linear(d_latent, d_hidden) for _ in range(n_lin_z)])
        self.lin_global_z = nn.ModuleList([nn.Linear(d_global + d_hidden, d_hidden) for _ in range(n_global_blocks)])
        if feature_fuse_mode == "concat":
            self.lin_fuse_z = nn.ModuleList([nn.Linear(2 * d_hidden, d_hidden) for _ in range(n_lin_z)])
        if use_spade:
            self.scale_z = nn.ModuleList([nn.Linear(d_latent, d_hidden) for _ in range(n_lin_z)])
        if use_temporal_feature:
            d_t = int(d_hidden * temporal_proportion)
            # The original builds one per lin_z block but only ever reads index 0 (method.md §2.9): build that one.
            self.temporal_linear = nn.ModuleList([nn.Linear(d_latent, d_t)])
            self.temporal_linear_fuse = nn.ModuleList([nn.Linear(d_hidden + d_t, d_hidden)])
        self.view_head = ViewHead(d_hidden, d_views) if use_viewdirs else None
        if not use_viewdirs:
            self.lin_out = nn.Linear(d_hidden, 4)
        self.sf_linear = nn.Linear(d_hidden, 3)
        self.weight_linear = nn.Linear(d_hidden, 1)
        self.ode_fc = nn.Sequential(nn.Linear(d_flow_latent, 4096), nn.ReLU(), nn.Linear(4096, d_global))

    # ------------------------------------------------------------------------------------------ shared trunk
    def global_code(self, pooled_flow_latent: torch.Tensor, enabled: bool = True) -> torch.Tensor:
        """Global video code (method.md §2.7 step 3): ``ode_fc`` of the average-pooled SlowOnly layer4 (S, 2048).

        Returns (S, d_global); zeros when ``feat_guided_flow`` is off.
        """
        code = self.ode_fc(pooled_flow_latent)
        return code if enabled else torch.zeros_like(code)

    def trunk(self, pts: torch.Tensor, global_code: torch.Tensor) -> torch.Tensor:
        """Shared first layers: ``relu(lin_in(normalize(pts)))`` then the global blocks with the code (method.md §2.9).

        pts (S, P, 84) → (S, P, d_hidden).
        """
        h = F.relu(self.lin_in(F.normalize(pts, dim=-1)))
        g = torch.zeros_like(global_code) if self.zero_features else global_code
        for k in range(self.n_global_blocks):
            h = self.global_blocks[k](linear_split(self.lin_global_z[k], h, g))
        return h

    # ------------------------------------------------------------------------------------------------ forward
    def latent_projection(self) -> torch.Tensor | None:
        """The weights of the per-block latent layers stacked, (n·d_hidden, d_latent), for a render's projected maps
        (:mod:`~mononerf.models.projected`): block b's ``lin_z[b]``; with temporal features, block 0's map composed
        with the fusion layer's first half, ``W_fuse[:, :d] · W_z0`` (a product of linear maps; :meth:`add_projected`
        adds the biases and the temporal half after sampling). None where the latent enters otherwise or not at all."""
        if self.use_spade or self.zero_features or not self.flow_guided_feat or self.feature_fuse_mode != "addition":
            return None
        ws = [lin.weight for lin in self.lin_z]
        if self.use_temporal_feature and ws:
            ws[0] = self.temporal_linear_fuse[0].weight[:, :self.d_hidden] @ ws[0]
        return torch.cat(ws, 0)

    def add_projected(self, proj: torch.Tensor, b: int, h: torch.Tensor,
                      latent_temporal: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`add_latent` from block ``b``'s slice ``proj`` (S, P, d_hidden) of the projected maps' lookups, with
        the raw features at t−1/t+1 (S, P, 2, d_latent) for block 0's temporal half."""
        if b >= len(self.lin_z):
            return h
        if self.use_temporal_feature and b == 0:
            # fuse(cat[lin_z0(l), tt]) = (W_fa·W_z0)·l + W_fb·tt + (W_fa·b_z0 + b_fuse)
            d = self.lin_z[0].out_features
            fuse = self.temporal_linear_fuse[0]
            tt = self.temporal_linear[0](pair_mean(latent_temporal))
            bias = torch.addmv(fuse.bias, fuse.weight[:, :d], self.lin_z[0].bias)
            proj = F.linear(tt, fuse.weight[:, d:], bias).add_(proj)
        else:
            proj = plus_bias_like(proj, self.lin_z[b].bias, h)
        # h + proj in place on the temporary (addition commutes: the same bits)
        return proj.add_(h)

    def add_latent(self, latent: torch.Tensor | None, latent_temporal: torch.Tensor | None, b: int,
                   h: torch.Tensor) -> torch.Tensor:
        """Block ``b``'s latent term added to ``h`` (S, P, d_hidden) (method.md §2.9); arguments: :meth:`forward`'s."""
        if b >= self.combine_layer:
            return h
        tz = self.lin_z[b](latent)
        if self.use_temporal_feature and b == 0:
            # mean over the two neighbour features commutes with the linear layer
            tt = self.temporal_linear[0](latent_temporal.mean(dim=-2))
            tz = self.temporal_linear_fuse[0](torch.cat([tz, tt], -1))
        if self.zero_features or not self.flow_guided_feat:
            tz = torch.zeros_like(tz)
        if self.use_spade:
            return self.scale_z[b](latent) * h + tz
        if self.feature_fuse_mode == "addition":
            return h + tz
        return self.lin_fuse_z[b](torch.cat([h, tz], -1))

    def forward(self, pts: torch.Tensor, views: torch.Tensor, latent: torch.Tensor | None, global_code: torch.Tensor,
                sf: torch.Tensor, latent_temporal: torch.Tensor | None = None,
                inject: Injection | None = None) -> torch.Tensor:
        """Dynamic NeRF at points (method.md §2.9).

        Args:
            pts: (S, P, 84) xyzt embedding.  views: (S, P, 27) view-direction embedding.
            latent: (S, P, d_latent) SlowOnly features at the current frame.
            global_code: (S, d_global).  sf: (S, P, 6) positions at t−1 and t+1 from the trajectory.
            latent_temporal: (S, P, 2, d_latent) features gathered at t−1/t+1 (``use_temporal_feature``).
            inject: ``inject(b, h)`` adds block b's latent term in place of :meth:`add_latent` (renders:
                :class:`~mononerf.models.projected.ProjectedLatent`; ``latent`` and ``latent_temporal`` unused).
        Returns:
            (S, P, 11).
        """
        add = inject if inject is not None else partial(self.add_latent, latent, latent_temporal)
        h = self.trunk(pts, global_code)
        for b, block in enumerate(self.blocks):
            h = block(add(b, h))
        blending = torch.sigmoid(self.weight_linear(h))
        out = self.view_head(h, views) if self.view_head is not None else self.lin_out(h)
        return pack_dynamic(out, sf, blending)
