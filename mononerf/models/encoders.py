"""Image encoders: the SlowOnly-R50 video encoder (dynamic branch) and the ResNet18 frame encoder (static branch).

Batch vocabulary: B scenes (S elsewhere in the package), T frames, C channels, H/W image and h/w latent grid.

* :class:`SpatialTemporalEncoder` (method.md §2.1): clip (B, 3, T, Hc, Wc) → pixel-aligned ``latent``
  (B, C, T, Hc/2, Wc/2) from the chosen backbone layers, ``latent_scaling``, and ``flow_latent`` (layer4).
  Two implementations of the same backbone: ``impl="native"`` (plain PyTorch, :mod:`mononerf.models.slowonly`)
  and ``impl="mmaction"`` (MMAction2 1.1.0's ``ResNet3dSlowOnly`` built through its registry).
* :class:`~mononerf.models.spatial_encoder.SpatialEncoder` (method.md §2.2; its own module): frames (B, T, H, W, 3) in
  [0, 1] → ``latent`` (B, 512, T, H/4, W/4) for the original's ResNet18, other torchvision ResNets by name.
* :func:`preprocess_clip`: the original's MMAction2 clip pipeline (Resize + Normalize, method.md §2.1, quirk §8.5).
* ``encode(x, batchnorm_train=...)`` on both encoders: quirk ``encoder_batchnorm_train`` (method.md §8.6).

Module attribute names keep the original's checkpoint keys: ``model.backbone.*`` for SlowOnly and
``features.*`` for ResNet18 (method.md §5.4 lists ``encoder.model.*`` and ``encoder2d.features.*``).
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mononerf.errors import ConfigError, MonoNeRFError
from mononerf.models.slowonly import ResNet3dSlowOnly
from mononerf.models.weights import (
    SLOWONLY_R50_FILE,
    default_checkpoint_dirs,
    find_weight_file,
    load_checkpoint_state,
    load_state_strict,
    strip_mmaction_backbone,
)
from mononerf.models.features import FeatureVolume, merge_levels
from mononerf.utils.checks import check_shape

#: MMAction2 ``Normalize`` of the original clip pipeline (0..255 RGB, to_bgr=False).
CLIP_MEAN = (123.675, 116.28, 103.53)
CLIP_STD = (58.395, 57.12, 57.375)
#: torchvision ImageNet statistics for [0, 1] RGB.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ENCODER_IMPLS = ("mmaction", "native")
#: Arguments of the original's backbone (mmaction_configs/_base_/models/slowonly_r50.py).
SLOWONLY_R50_ARGS = dict(
    depth=50,
    lateral=False,
    conv1_kernel=(1, 7, 7),
    conv1_stride_t=1,
    pool1_stride_t=1,
    inflate=(0, 0, 1, 1),
    norm_eval=False,
    with_pool1=False,
)


# ----------------------------------------------------------------------------------------------- clip preprocessing
def encoder_clip_size(height: int, width: int, *, stretch: bool) -> tuple[int, int]:
    """(H', W') of the clip fed to the video encoder for frames of size (H, W).

    Quirk ``encoder_clip_stretch`` (method.md §8.5; original src/data/LLFFDataset.py:L21, mmaction
    ``Resize(scale=(270, 480), keep_ratio=False)`` where scale is (w, h)): the original stretches its
    270×480 frames to 480×270, i.e. swaps height and width. Generalised to any size (docs/decisions.md):
    ``stretch=True`` → (W, H); ``stretch=False`` → (H, W), the frames' own size.
    """
    return (width, height) if stretch else (height, width)


def preprocess_clip(frames: torch.Tensor, *, stretch: bool) -> torch.Tensor:
    """Frames → normalised video-encoder clip, as the original's MMAction2 pipeline (method.md §2.1).

    Bilinear resize with cv2 ``INTER_LINEAR``'s half-pixel-centre convention (what ``mmcv.imresize``
    does; ``align_corners=False``, no antialiasing), then ``(x - mean) / std`` per RGB channel.

    Args:
        frames: (B, T, H, W, 3) RGB with values in 0..255 (any dtype; integers become float32).
        stretch: quirk ``encoder_clip_stretch`` — resize to (W, H) (see :func:`encoder_clip_size`).

    Returns:
        (B, 3, T, H', W') clip, on the input's device.
    """
    check_shape(frames, "B T H W 3", "frames")
    x = frames if frames.is_floating_point() else frames.float()
    b, t, h, w, _ = x.shape
    x = x.permute(0, 1, 4, 2, 3).reshape(b * t, 3, h, w)
    out_h, out_w = encoder_clip_size(h, w, stretch=stretch)
    if (out_h, out_w) != (h, w):
        x = F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=False)
    mean = torch.tensor(CLIP_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.reshape(b, t, 3, out_h, out_w).permute(0, 2, 1, 3, 4).contiguous()


# ----------------------------------------------------------------------------------------------- shared helpers
def latent_scaling_for(latent: torch.Tensor) -> torch.Tensor:
    """pixelNeRF's align-corners factor ``[W_l/(W_l-1)·2, H_l/(H_l-1)·2]`` of a latent (..., H_l, W_l) (method.md §2.4).

    Returns a float32 tensor of shape (2,) on the latent's device.
    """
    size = torch.tensor([latent.shape[-1], latent.shape[-2]], dtype=torch.float32, device=latent.device)
    # (a FeatureVolume has the shape and device of the volume it stands for)
    return size / (size - 1) * 2.0


def set_frozen(module: nn.Module) -> None:
    """``requires_grad=False`` on every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(False)


class _EncoderBase(nn.Module):
    """``encode`` with an explicit BatchNorm mode, and the ``freeze`` switch, shared by both encoders."""

    freeze: bool

    def _grad_context(self):
        return torch.no_grad() if self.freeze else nullcontext()

    def encode(self, x: torch.Tensor, *, batchnorm_train: bool = True) -> dict[str, torch.Tensor]:
        """Run ``forward`` once with BatchNorm in batch-statistics (True) or running-statistics (False) mode.

        Quirk ``encoder_batchnorm_train`` (method.md §8.6): the original never calls ``eval()``, so BatchNorm
        normalises with the statistics of the whole batch (all scenes together) and updates its
        running statistics (reproduced). ``False`` uses the stored running statistics. The module's
        train/eval flags are restored afterwards.
        """
        flags = {m: m.training for m in self.modules()}
        self.train(batchnorm_train)
        try:
            return self(x)
        finally:
            for m, flag in flags.items():
                m.training = flag


# ----------------------------------------------------------------------------------------------- SlowOnly encoder
def resolve_latent_layers(num_layers: int | Sequence[int]) -> list[int]:
    """Layer ids used for the pixel-aligned latent: int k → [0, .., k-1]; list → those ids, in network order.

    Ids: 0 conv1, 1 layer1, 2 layer2, 3 layer3, 4 layer4 (method.md §2.1, §7.1 ``model.encoder.num_layers``).
    """
    if isinstance(num_layers, bool):
        raise ConfigError(f"model.encoder.num_layers must be an int 1..5 or a list of ids 0..4, got {num_layers!r}")
    if isinstance(num_layers, int):
        if not 1 <= num_layers <= 5:
            raise ConfigError(f"model.encoder.num_layers must be in 1..5, got {num_layers}")
        return list(range(num_layers))
    layers = list(num_layers)
    if not layers or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= 4 for i in layers):
        raise ConfigError(f"model.encoder.num_layers list must hold layer ids 0..4, got {layers!r}")
    return sorted(set(layers))


def build_mmaction_slowonly() -> nn.Module:
    """MMAction2 1.1.0's ``ResNet3dSlowOnly`` with the original's arguments, built through its registry."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mmcv-lite warns that compiled ops are absent (SlowOnly uses none)
            import mmaction.models  # noqa: F401  (registers the backbones)
            from mmaction.registry import MODELS
    except ImportError as err:
        raise MonoNeRFError(
            f"encoder.impl = 'mmaction' needs MMAction2 ({err}). Install it with: pip install -e .[mmaction] "
            "(or use encoder.impl = 'native', the default, which needs no extra package)."
        ) from err
    return MODELS.build(dict(type="ResNet3dSlowOnly", pretrained=None, **SLOWONLY_R50_ARGS))


class _BackboneHolder(nn.Module):
    """Keeps the backbone under ``model.backbone`` so state-dict keys match the original's (``encoder.model.*``)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone


class SpatialTemporalEncoder(_EncoderBase):
    """SlowOnly-R50 video encoder → pixel-aligned latent + layer4 "flow" latent (method.md §2.1).

    Args:
        num_layers: int k → layers 0..k-1; list → those ids (0 conv1 64 ch, 1 layer1 256, 2 layer2 512,
            3 layer3 1024, 4 layer4 2048). ``[0, 1, 2]`` (the released configs) gives 832 channels.
        impl: ``"native"`` (plain PyTorch, default) or ``"mmaction"`` (MMAction2 1.1.0, extra ``[mmaction]``).
        pretrained: load the Kinetics-400 SlowOnly checkpoint (strict keys); False → random weights.
        pretrained_path: file name or path of that checkpoint.
        search_dirs: folders searched for it; default ``./checkpoints`` then the source tree's ``checkpoints/``.
        freeze: no parameter requires grad and ``forward`` runs under ``torch.no_grad()``.

    Attributes:
        latent_size: channels of ``latent`` (sum over the used layers).
        used_latent_layers: the resolved layer ids.
    """

    layer_latent_size = ResNet3dSlowOnly.layer_channels

    def __init__(
        self,
        *,
        num_layers: int | Sequence[int] = 4,
        impl: str = "native",
        pretrained: bool = True,
        pretrained_path: str | Path = SLOWONLY_R50_FILE,
        search_dirs: Sequence[str | Path] | None = None,
        freeze: bool = False,
        native_latent: bool = False,
    ) -> None:
        super().__init__()
        self.native_latent = native_latent
        if impl not in ENCODER_IMPLS:
            raise ConfigError(f"unknown encoder impl {impl!r}; expected one of {sorted(ENCODER_IMPLS)}")
        self.impl = impl
        self.used_latent_layers = resolve_latent_layers(num_layers)
        self.latent_size = sum(self.layer_latent_size[i] for i in self.used_latent_layers)
        backbone = build_mmaction_slowonly() if impl == "mmaction" else ResNet3dSlowOnly()
        self.model = _BackboneHolder(backbone)
        if pretrained:
            dirs = default_checkpoint_dirs() if search_dirs is None else list(search_dirs)
            path = find_weight_file(pretrained_path, dirs)
            state = strip_mmaction_backbone(load_checkpoint_state(path))
            load_state_strict(self.model.backbone, state, source=str(path))
        self.model.backbone.to(memory_format=torch.channels_last_3d)  # see backbone_features
        self.freeze = freeze
        if freeze:
            set_frozen(self)

    def backbone_features(self, clip: torch.Tensor) -> list[torch.Tensor]:
        """[conv1, layer1, layer2, layer3, layer4] outputs; no pooling anywhere (with_pool1/2 False).

        Runs in the channels-last-3d memory layout (same arithmetic, ~1.5x faster oneDNN convolutions on CPU;
        ``benchmarks/README.md``); the returned tensors are ordinary contiguous ones.
        """
        backbone = self.model.backbone
        feats = [backbone.conv1(clip.contiguous(memory_format=torch.channels_last_3d))]
        for name in ("layer1", "layer2", "layer3", "layer4"):
            feats.append(getattr(backbone, name)(feats[-1]))
        return feats

    def forward(self, clip: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encode a normalised clip (see :func:`preprocess_clip`).

        Args:
            clip: (B, 3, T, Hc, Wc).

        Returns:
            ``latent`` (B, latent_size, T, h, w) with (h, w) the conv1 grid ≈ (Hc/2, Wc/2): each used layer
            resized there (trilinear, align_corners=True) and concatenated in layer order;
            ``latent_scaling`` (2,) = [w/(w-1)·2, h/(h-1)·2];
            ``flow_latent`` (B, 2048, T, ≈Hc/16, ≈Wc/16) = layer4 output (always computed).
        """
        check_shape(clip, "B 3 T H W", "clip")
        with self._grad_context():
            feats = self.backbone_features(clip)
            grid = feats[0].shape[-3:]
            if self.native_latent:
                # same values, coarse layers kept coarse (FeatureVolume); a layer with another frame count is
                # resized in time here (SlowOnly keeps every frame, so none is)
                levels = [feats[i] if feats[i].shape[-3] == grid[0]
                          else F.interpolate(feats[i], size=grid, mode="trilinear", align_corners=True)
                          for i in self.used_latent_layers]
                volume = FeatureVolume(merge_levels(levels), tuple(grid[1:]))
                return {"latent": volume, "latent_scaling": latent_scaling_for(volume), "flow_latent": feats[4]}
            latents = [
                feats[i] if feats[i].shape[-3:] == grid
                else F.interpolate(feats[i], size=grid, mode="trilinear", align_corners=True)
                for i in self.used_latent_layers
            ]
            latent = latents[0] if len(latents) == 1 else torch.cat(latents, dim=1)
        # the latent stays channels-last: a frame slice is then a channels-last (C, h, w) view, and grid_sample
        # gathers each point's channels from contiguous memory (~3.5x faster lookups, benchmarks/README.md)
        latent = latent.contiguous(memory_format=torch.channels_last_3d)
        return {"latent": latent, "latent_scaling": latent_scaling_for(latent), "flow_latent": feats[4]}
