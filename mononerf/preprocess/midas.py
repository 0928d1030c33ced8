"""Monocular depth with MiDaS v2.1 (ResNeXt-101 32x8d encoder + RefineNet-style decoder), method.md §6.2.

Our own PyTorch module whose parameter names are those of the published file ``midas_v21-f6b98070.pt`` (the
original's ``MidasNet(non_negative=True)``), so that file loads strictly:

    pretrained.layer1.{0: conv1, 1: bn1, 4: layer1}   pretrained.layer{2,3,4}   (torchvision ResNeXt-101 32x8d layers)
    scratch.layer{1..4}_rn                               3x3 convs to 256 channels, no bias
    scratch.refinenet{1..4}.resConfUnit{1,2}.conv{1,2}   fusion blocks (refinenet4.resConfUnit1 exists but is unused)
    scratch.output_conv.{0, 2, 4}                        head: conv 256→128, ×2 upsample, conv 128→32, ReLU, conv 32→1

The step reads ``images/`` (sorted), resizes each frame as the original does (keep aspect, each side a multiple of
32 not above the frame's own size, bicubic), normalises with the ImageNet mean/std, runs the net, resizes the
prediction back bicubically to the frame size and writes ``disp/<stem>.npy`` (float32 relative inverse depth) and
``disp_png/<stem>.png`` (uint16 min–max visualisation).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mononerf.models.weights import _torch_load_weights_only, load_state_strict
from mononerf.preprocess.common import PreprocessError, find_any_weight, list_images, progress, weight_dirs
from mononerf.utils.folders import staged

MIDAS_FILE = "midas_v21-f6b98070.pt"
MIDAS_URLS = {MIDAS_FILE: "https://github.com/isl-org/MiDaS/releases/download/v2_1/midas_v21-f6b98070.pt"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ENCODER_CHANNELS = (256, 512, 1024, 2048)


class ResidualConvUnit(nn.Module):
    """``x + conv2(relu(conv1(relu(x))))`` with 3x3 convolutions."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FusionBlock(nn.Module):
    """Add the refined skip features (when given), refine, upsample ×2 (bilinear, align_corners=True)."""

    def __init__(self, features: int):
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class _Upsample(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class MidasV21(nn.Module):
    """MiDaS v2.1 depth network; input (B, 3, H, W) normalised RGB with H, W multiples of 32 → (B, H, W) disparity."""

    def __init__(self, features: int = 256, non_negative: bool = True):
        super().__init__()
        from torchvision.models import resnext101_32x8d

        net = resnext101_32x8d(weights=None)
        self.pretrained = nn.Module()
        self.pretrained.layer1 = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1)
        self.pretrained.layer2, self.pretrained.layer3, self.pretrained.layer4 = net.layer2, net.layer3, net.layer4
        self.scratch = nn.Module()
        for i, ch in enumerate(ENCODER_CHANNELS, start=1):
            setattr(self.scratch, f"layer{i}_rn", nn.Conv2d(ch, features, 3, padding=1, bias=False))
        for i in range(1, 5):
            setattr(self.scratch, f"refinenet{i}", FusionBlock(features))
        self.scratch.output_conv = nn.Sequential(
            nn.Conv2d(features, 128, 3, padding=1), _Upsample(), nn.Conv2d(128, 32, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(32, 1, 1), nn.ReLU(True) if non_negative else nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc, s = self.pretrained, self.scratch
        l1 = enc.layer1(x)
        l2 = enc.layer2(l1)
        l3 = enc.layer3(l2)
        l4 = enc.layer4(l3)
        path = s.refinenet4(s.layer4_rn(l4))
        path = s.refinenet3(path, s.layer3_rn(l3))
        path = s.refinenet2(path, s.layer2_rn(l2))
        path = s.refinenet1(path, s.layer1_rn(l1))
        return s.output_conv(path).squeeze(1)


def load_midas(path: str | os.PathLike) -> MidasV21:
    """A :class:`MidasV21` with the weights of ``path`` (strict keys and shapes; ``{"model": …}`` files unwrapped)."""
    obj = _torch_load_weights_only(Path(path))
    if isinstance(obj, dict) and "optimizer" in obj:  # a training checkpoint: the weights are under "model"
        obj = obj["model"]
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PreprocessError(f"weight file {path} holds no MiDaS state dict")
    model = MidasV21()
    load_state_strict(model, state, source=str(path))
    return model.eval()


def find_midas_weights(weights_dir: str | os.PathLike | None = None) -> Path:
    """Path of ``midas_v21-f6b98070.pt`` in the weight folders, or MissingWeightsError naming file and address."""
    return find_any_weight([MIDAS_FILE], weight_dirs(weights_dir), what="depth (MiDaS v2.1)", urls=MIDAS_URLS)


def midas_weights_for(method: str = "auto", weights_dir: str | os.PathLike | None = None,
                      log=print) -> Path | None:
    """The MiDaS file to use for ``--depth method``, or None for the depth triangulated from the flow
    (:mod:`flow_depth`): ``flow`` is None, ``auto`` the file when found, otherwise None with a notice; ``midas``
    insists (the missing file's message)."""
    from mononerf.errors import MissingWeightsError

    if method == "flow":
        return None
    try:
        return find_midas_weights(weights_dir)
    except MissingWeightsError as err:
        if method == "midas":
            raise
        log(f"notice: {err} Using the depth triangulated from the flow and the poses instead (--depth midas to "
            "insist on MiDaS).")
        return None


def _multiple_of_32(x: float, max_val: int) -> int:
    y = int(np.round(x / 32) * 32)
    if y > max_val:
        y = int(np.floor(x / 32) * 32)
    return max(y, 32)


def net_input_size(width: int, height: int) -> tuple[int, int]:
    """(W, H) the original feeds MiDaS for a (W, H) frame: 'upper_bound' resize to the frame itself, multiples of 32.

    With the target equal to the frame the scale is 1, so each side is rounded to a multiple of 32, rounded down
    when rounding would exceed the frame: 480x270 → 480x256, 960x540 → 960x512.
    """
    return _multiple_of_32(width, width), _multiple_of_32(height, height)


def prepare_image(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB → (1, 3, h, w) float32 network input (bicubic resize, ImageNet normalisation)."""
    height, width = rgb.shape[:2]
    img = rgb.astype(np.float64) / 255.0
    img = cv2.resize(img, net_input_size(width, height), interpolation=cv2.INTER_CUBIC)
    img = (img - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()[None]


@torch.no_grad()
def predict_disparity(model: MidasV21, rgb: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """(H, W) float32 relative inverse depth of one (H, W, 3) uint8 frame, at the frame's size."""
    height, width = rgb.shape[:2]
    pred = model(prepare_image(rgb).to(device))
    pred = F.interpolate(pred[:, None], size=(height, width), mode="bicubic", align_corners=False)
    return pred[0, 0].cpu().numpy().astype(np.float32)


def disparity_png(disp: np.ndarray) -> np.ndarray:
    """uint16 min–max scaled visualisation (zeros for a constant map), as the original's ``disp_png/``."""
    lo, hi = float(disp.min()), float(disp.max())
    if hi - lo <= np.finfo(float).eps:
        return np.zeros(disp.shape, np.uint16)
    return (65535 * (disp - lo) / (hi - lo)).astype(np.uint16)


def run_depth(scene_dir: str | os.PathLike, weights: str | os.PathLike | None = None,
              weights_dir: str | os.PathLike | None = None, device: str = "cpu", show_progress: bool = True,
              source: str = "images") -> int:
    """Write ``disp/`` and ``disp_png/`` for every frame of ``source`` (``images/`` as the original, or
    ``images_2/`` to save time: the loader resizes ``disp/`` to the training size anyway); returns the count."""
    scene_dir = Path(scene_dir)
    files = list_images(scene_dir / source, "frames for depth")
    path = Path(weights) if weights else find_midas_weights(weights_dir)
    model = load_midas(path).to(device)
    with staged(scene_dir, "disp", "disp_png") as dirs:
        out, out_png = dirs["disp"], dirs["disp_png"]
        for f in progress(files, show_progress, "depth"):
            rgb = cv2.imread(str(f), cv2.IMREAD_COLOR)[..., ::-1]
            disp = predict_disparity(model, rgb, device)
            np.save(out / f"{f.stem}.npy", disp)
            cv2.imwrite(str(out_png / f"{f.stem}.png"), disparity_png(disp))
    return len(files)
