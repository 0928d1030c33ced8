"""The frame encoder of the static branch: a torchvision ResNet chosen by name (method.md §2.2; pixelNeRF's
``SpatialEncoder(backbone=...)``).

The original uses ResNet18 (``model.encoder_2d.type = resnet18``). :data:`BACKBONES_2D` names every backbone this
encoder can build, with the channels of its latent levels and torchvision's ImageNet weight file: adding a backbone is
one entry there (docs/architecture.md). The module attribute ``features`` is the torchvision network, so the
checkpoint keys are ``encoder2d.features.*`` for every backbone, the original's for ResNet18.

Batch vocabulary: B scenes, T frames, H/W image and h/w latent grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from mononerf.errors import ConfigError
from mononerf.models.encoders import IMAGENET_MEAN, IMAGENET_STD, _EncoderBase, latent_scaling_for, set_frozen
from mononerf.models.features import FeatureVolume, merge_levels
from mononerf.models.weights import (
    RESNET_FILES,
    default_checkpoint_dirs,
    find_weight_file,
    load_checkpoint_state,
    load_state_strict,
)
from mononerf.utils.checks import check_shape


class Backbone2D(NamedTuple):
    """A 2D backbone: ``build()`` makes the torchvision network (no weights), ``levels`` are the channels of its
    latent levels [max-pool output, layer1, layer2, layer3, layer4], ``weights_file`` torchvision's ImageNet file."""

    build: Callable[[], nn.Module]
    levels: tuple[int, ...]
    weights_file: str


_BASIC = (64, 64, 128, 256, 512)  # BasicBlock ResNets
_BOTTLENECK = (64, 256, 512, 1024, 2048)  # Bottleneck ResNets (4x expansion)

#: Every backbone ``model.encoder_2d.type`` may name.
BACKBONES_2D: dict[str, Backbone2D] = {
    "resnet18": Backbone2D(lambda: torchvision.models.resnet18(weights=None), _BASIC, RESNET_FILES["resnet18"]),
    "resnet34": Backbone2D(lambda: torchvision.models.resnet34(weights=None), _BASIC, RESNET_FILES["resnet34"]),
    "resnet50": Backbone2D(lambda: torchvision.models.resnet50(weights=None), _BOTTLENECK, RESNET_FILES["resnet50"]),
    "resnet101": Backbone2D(lambda: torchvision.models.resnet101(weights=None), _BOTTLENECK,
                            RESNET_FILES["resnet101"]),
    "resnet152": Backbone2D(lambda: torchvision.models.resnet152(weights=None), _BOTTLENECK,
                            RESNET_FILES["resnet152"]),
}


class SpatialEncoder(_EncoderBase):
    """Frame-wise ResNet encoder for the static branch (method.md §2.2).

    Args:
        backbone: a name of :data:`BACKBONES_2D` (the original: ``resnet18``).
        pretrained: load torchvision's ImageNet weights of the backbone from a local file (strict keys).
        weights_path: file name or path of the weights; default the backbone's torchvision file name, looked for in
            ``./checkpoints``, the source tree's ``checkpoints/`` and ``$TORCH_HOME/hub/checkpoints``.
        search_dirs: replaces those folders.
        num_layers: k → latents [maxpool output, layer1, .., layer(k-1)] (the original always uses 4: 512 channels
            for ResNet18).
        freeze: no parameter requires grad and ``forward`` runs under ``torch.no_grad()``.
        native_latent: return the levels at their own resolutions (a FeatureVolume, the same values).
    """

    def __init__(
        self,
        *,
        backbone: str = "resnet18",
        pretrained: bool = True,
        weights_path: str | Path | None = None,
        search_dirs: Sequence[str | Path] | None = None,
        num_layers: int = 4,
        freeze: bool = False,
        native_latent: bool = False,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES_2D:
            raise ConfigError(f"2D backbone {backbone!r} is not one of {', '.join(BACKBONES_2D)} "
                              "(model.encoder_2d.type)")
        spec = BACKBONES_2D[backbone]
        self.backbone, self.native_latent = backbone, native_latent
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or not 1 <= num_layers <= 5:
            raise ConfigError(f"SpatialEncoder num_layers must be an int in 1..5, got {num_layers!r}")
        self.num_layers = num_layers
        self.layer_latent_size = spec.levels
        self.latent_size = sum(spec.levels[:num_layers])
        self.features = spec.build()
        if pretrained:
            dirs = default_checkpoint_dirs(include_torch_hub=True) if search_dirs is None else list(search_dirs)
            path = find_weight_file(weights_path or spec.weights_file, dirs)
            load_state_strict(self.features, load_checkpoint_state(path), source=str(path))
        self.features.fc = nn.Identity()  # the classifier is never used (no keys, like the original's Sequential())
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.freeze = freeze
        if freeze:
            set_frozen(self)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encode frames.

        Args:
            images: (B, T, H, W, 3) RGB in [0, 1].

        Returns:
            ``latent`` (B, latent_size, T, h, w) on the max-pool grid (≈ H/4, W/4): [maxpool, layer1, layer2,
            layer3] resized there (bilinear, align_corners=True) and concatenated; ``latent_scaling`` (2,).
        """
        check_shape(images, "B T H W 3", "images")
        b, t, h, w, _ = images.shape
        net = self.features
        with self._grad_context():
            x = images.reshape(b * t, h, w, 3).permute(0, 3, 1, 2)
            x = (x - self.mean.to(x)) / self.std.to(x)
            x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
            latents = [x]
            for i in range(1, self.num_layers):
                x = getattr(net, f"layer{i}")(x)
                latents.append(x)
            grid = latents[0].shape[-2:]
            if self.native_latent:  # coarse layers stay coarse (FeatureVolume, same values)
                levels = [f.reshape(b, t, *f.shape[1:]).transpose(1, 2) for f in latents]
                volume = FeatureVolume(merge_levels(levels), tuple(grid))
                return {"latent": volume, "latent_scaling": latent_scaling_for(volume)}
            latents = [
                f if f.shape[-2:] == grid else F.interpolate(f, size=grid, mode="bilinear", align_corners=True)
                for f in latents
            ]
            latent = torch.cat(latents, dim=1)
            # channels-last like the video latent (fast per-point gathers in grid_sample)
            latent = latent.reshape(b, t, *latent.shape[1:]).permute(0, 2, 1, 3, 4)
            latent = latent.contiguous(memory_format=torch.channels_last_3d)
        return {"latent": latent, "latent_scaling": latent_scaling_for(latent)}
