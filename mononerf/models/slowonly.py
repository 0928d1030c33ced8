"""SlowOnly-R50 (8x8x1) video backbone in plain PyTorch, with MMAction2's parameter names (method.md §2.1).

The module tree mirrors MMAction2's ``ResNet3dSlowOnly(depth=50, lateral=False, conv1_kernel=(1, 7, 7),
conv1_stride_t=1, pool1_stride_t=1, inflate=(0, 0, 1, 1), norm_eval=False, with_pool1=False)`` so that its
``state_dict`` has the same 318 keys and shapes (``conv1.conv.weight``, ``layer3.0.conv1.bn.running_mean``,
``layer1.0.downsample.conv.weight``, ...). The official checkpoint therefore loads strictly after
stripping ``backbone.`` and dropping ``cls_head.*`` (method.md §8 item 21; docs/decisions.md "Video encoder").

Architecture facts (MMAction2 defaults the original relies on):
    stem ``conv1``: Conv3d 3→64, kernel (1, 7, 7), stride (1, 2, 2), padding (0, 3, 3) + BN + ReLU;
        no max-pool (``with_pool1=False``), no temporal pool (``with_pool2=False``).
    ``layer1..layer4``: 3, 4, 6, 3 bottlenecks, widths 64/128/256/512 (×4 out), spatial strides 1, 2, 2, 2
        on the 3×3 conv ("pytorch" style), temporal strides 1; a 1×1×1 strided conv + BN shortcut on the
        first block of each layer.
    inflation (0, 0, 1, 1), style "3x1x1": blocks of layer3/layer4 use a (3, 1, 1) first conv with
        padding (1, 0, 0) — the only place frames mix; layer1/layer2 are per-frame.
    BatchNorm3d eps 1e-5, momentum 0.1 (mmcv ``BN3d``); convs have no bias.

Shapes for a clip (B, 3, T, H, W): conv1 (B, 64, T, H/2, W/2), layer1 (B, 256, T, H/2, W/2),
layer2 (B, 512, T, H/4, W/4), layer3 (B, 1024, T, H/8, W/8), layer4 (B, 2048, T, H/16, W/16), each
spatial size rounded as strided-conv arithmetic gives (``ceil`` of the halving).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

#: Bottleneck counts per layer for each supported depth (MMAction2 ``ResNet3d.arch_settings``).
STAGE_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
BOTTLENECK_EXPANSION = 4


class ConvBN3d(nn.Module):
    """Conv3d (no bias) → BatchNorm3d → optional ReLU, named like mmcv's ``ConvModule`` (``conv``, ``bn``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: Sequence[int],
        stride: Sequence[int] = (1, 1, 1),
        padding: Sequence[int] = (0, 0, 0),
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv3d(
            in_channels, out_channels, tuple(kernel_size), stride=tuple(stride), padding=tuple(padding), bias=False
        )
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-5, momentum=0.1)
        self.activate = nn.ReLU(inplace=True) if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, H, W) → (B, C_out, T', H', W')."""
        x = self.bn(self.conv(x))
        return self.activate(x) if self.activate is not None else x


class Bottleneck3d(nn.Module):
    """ResNet bottleneck with an optional (3, 1, 1) temporal first conv ("3x1x1" inflation).

    Stride sits on the 3×3 conv (MMAction2 "pytorch" style). Output channels = ``planes * 4``.
    """

    def __init__(
        self,
        inplanes: int,
        planes: int,
        *,
        spatial_stride: int = 1,
        temporal_stride: int = 1,
        inflate: bool = False,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        k1, p1 = ((3, 1, 1), (1, 0, 0)) if inflate else ((1, 1, 1), (0, 0, 0))
        self.conv1 = ConvBN3d(inplanes, planes, kernel_size=k1, padding=p1)
        self.conv2 = ConvBN3d(
            planes,
            planes,
            kernel_size=(1, 3, 3),
            stride=(temporal_stride, spatial_stride, spatial_stride),
            padding=(0, 1, 1),
        )
        self.conv3 = ConvBN3d(planes, planes * BOTTLENECK_EXPANSION, kernel_size=(1, 1, 1), relu=False)
        self.downsample = downsample
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, inplanes, T, H, W) → (B, 4·planes, T/ts, ⌈H/s⌉, ⌈W/s⌉)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv3(self.conv2(self.conv1(x)))
        return self.relu(out + identity)


def _make_layer(
    inplanes: int, planes: int, blocks: int, *, spatial_stride: int, temporal_stride: int, inflate: bool
) -> nn.Sequential:
    out_channels = planes * BOTTLENECK_EXPANSION
    downsample = None
    if spatial_stride != 1 or inplanes != out_channels:
        downsample = ConvBN3d(
            inplanes,
            out_channels,
            kernel_size=(1, 1, 1),
            stride=(temporal_stride, spatial_stride, spatial_stride),
            relu=False,
        )
    layers = [
        Bottleneck3d(
            inplanes,
            planes,
            spatial_stride=spatial_stride,
            temporal_stride=temporal_stride,
            inflate=inflate,
            downsample=downsample,
        )
    ]
    layers += [Bottleneck3d(out_channels, planes, inflate=inflate) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ResNet3dSlowOnly(nn.Module):
    """SlowOnly ResNet3d backbone (no pooling after the stem), MMAction2-compatible parameter names.

    Args:
        depth: 50 (the 8x8x1 checkpoint), 101 or 152.
        in_channels: input channels (3, RGB).
        base_channels: stem width (64).
        conv1_kernel: stem kernel (T, H, W), (1, 7, 7) for SlowOnly.
        conv1_stride_s, conv1_stride_t: stem spatial / temporal stride (2, 1).
        spatial_strides, temporal_strides: per-layer strides of the first block.
        inflate: per-layer flag: 1 → "3x1x1" temporal first conv in every block of that layer.
    """

    #: Channels of [conv1, layer1, layer2, layer3, layer4] for depth ≥ 50.
    layer_channels = (64, 256, 512, 1024, 2048)
    res_layers = ("layer1", "layer2", "layer3", "layer4")

    def __init__(
        self,
        *,
        depth: int = 50,
        in_channels: int = 3,
        base_channels: int = 64,
        conv1_kernel: Sequence[int] = (1, 7, 7),
        conv1_stride_s: int = 2,
        conv1_stride_t: int = 1,
        spatial_strides: Sequence[int] = (1, 2, 2, 2),
        temporal_strides: Sequence[int] = (1, 1, 1, 1),
        inflate: Sequence[int] = (0, 0, 1, 1),
    ) -> None:
        super().__init__()
        if depth not in STAGE_BLOCKS:
            raise ValueError(f"unknown SlowOnly depth {depth!r}; expected one of {sorted(STAGE_BLOCKS)}")
        if not len(spatial_strides) == len(temporal_strides) == len(inflate) == 4:
            raise ValueError("spatial_strides, temporal_strides and inflate need one entry per layer (4)")
        self.conv1 = ConvBN3d(
            in_channels,
            base_channels,
            kernel_size=conv1_kernel,
            stride=(conv1_stride_t, conv1_stride_s, conv1_stride_s),
            padding=tuple((k - 1) // 2 for k in conv1_kernel),
        )
        inplanes = base_channels
        for i, blocks in enumerate(STAGE_BLOCKS[depth]):
            planes = base_channels * 2**i
            layer = _make_layer(
                inplanes,
                planes,
                blocks,
                spatial_stride=spatial_strides[i],
                temporal_stride=temporal_strides[i],
                inflate=bool(inflate[i]),
            )
            self.add_module(self.res_layers[i], layer)
            inplanes = planes * BOTTLENECK_EXPANSION

    def forward_features(self, clip: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of [conv1, layer1, layer2, layer3, layer4] for a clip (B, 3, T, H, W)."""
        feats = [self.conv1(clip)]
        for name in self.res_layers:
            feats.append(getattr(self, name)(feats[-1]))
        return feats

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) → layer4 features (B, 2048, T, H/16, W/16)."""
        return self.forward_features(clip)[-1]
