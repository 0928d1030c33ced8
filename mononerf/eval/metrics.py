"""Image metrics of the novel-view protocol (method.md §6.1): PSNR, SSIM, LPIPS, plus dynamic-region (masked) variants.

All images are uint8 arrays (H, W, 3). PSNR and SSIM do not depend on the channel order; LPIPS does, and the original
fed the BGR arrays cv2 read straight into the network (kept by default as ``bgr_quirk=True``; method.md §6.1).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import structural_similarity

from mononerf.errors import MissingWeightsError

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
PSNR_PEAK = 255.0
SSIM_WIN = 7  # skimage's default window (uniform filter), as the original used it
# lpips' AlexNet wrapper splits torchvision's `features` into 5 Sequential slices by layer index:
# [0,2) [2,5) [5,8) [8,10) [10,12); conv layers sit at 0, 3, 6, 8, 10.
_ALEX_SLICES = ((1, 0, 2), (2, 2, 5), (3, 5, 8), (4, 8, 10), (5, 10, 12))


def _check_pair(gt: np.ndarray, pred: np.ndarray) -> None:
    if gt.dtype != np.uint8 or pred.dtype != np.uint8:
        raise ValueError(f"metrics expect uint8 images, got {gt.dtype} and {pred.dtype}")
    if gt.shape != pred.shape or gt.ndim != 3 or gt.shape[-1] != 3:
        raise ValueError(f"expected two (H, W, 3) images of equal shape, got {gt.shape} and {pred.shape}")


def _check_mask(mask: np.ndarray, gt: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask).astype(bool)
    if mask.shape != gt.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image (H, W) {gt.shape[:2]}")
    return mask


def _psnr_from_mse(mse: float) -> float:
    # cv2.PSNR: 20·log10(R / (sqrt(MSE) + DBL_EPSILON)), so identical images give ~361.2 dB, not inf.
    return float(20.0 * np.log10(PSNR_PEAK / (np.sqrt(mse) + np.finfo(np.float64).eps)))


def psnr(gt_u8: np.ndarray, pred_u8: np.ndarray) -> float:
    """PSNR in dB exactly as ``cv2.PSNR`` (method.md §6.1): peak 255, MSE over all pixels and channels.

    Args:
        gt_u8, pred_u8: (H, W, 3) uint8.
    Returns:
        10·log10(255² / MSE) (cv2's epsilon: identical images give 361.20, the value the original would average).
    """
    _check_pair(gt_u8, pred_u8)
    diff = gt_u8.astype(np.float64) - pred_u8.astype(np.float64)
    return _psnr_from_mse(float(np.mean(diff * diff)))


def masked_psnr(gt_u8: np.ndarray, pred_u8: np.ndarray, mask: np.ndarray) -> float | None:
    """PSNR with the MSE taken over the masked pixels only (all 3 channels); mask (H, W) bool. None if empty."""
    _check_pair(gt_u8, pred_u8)
    mask = _check_mask(mask, gt_u8)
    if not mask.any():
        return None
    diff = gt_u8[mask].astype(np.float64) - pred_u8[mask].astype(np.float64)
    return _psnr_from_mse(float(np.mean(diff * diff)))


def ssim(gt_u8: np.ndarray, pred_u8: np.ndarray) -> float:
    """Mean SSIM as ``structural_similarity(gt, pred, channel_axis=-1)`` (method.md §6.1: 7x7 window, range 255)."""
    _check_pair(gt_u8, pred_u8)
    return float(structural_similarity(gt_u8, pred_u8, channel_axis=-1, win_size=SSIM_WIN, data_range=PSNR_PEAK))


def masked_ssim(gt_u8: np.ndarray, pred_u8: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean of skimage's SSIM map over the masked pixels (all channels); None if the mask is empty.

    The map's border of (win-1)/2 pixels is left out, as skimage's own mean does, so an all-true mask gives ``ssim``.
    """
    _check_pair(gt_u8, pred_u8)
    mask = _check_mask(mask, gt_u8)
    _, smap = structural_similarity(gt_u8, pred_u8, channel_axis=-1, win_size=SSIM_WIN, data_range=PSNR_PEAK,
                                    full=True)
    pad = (SSIM_WIN - 1) // 2
    inner = np.zeros_like(mask)
    inner[pad:-pad, pad:-pad] = True
    sel = mask & inner
    if not sel.any():
        return None
    return float(smap[sel].astype(np.float64).mean())


def find_alexnet_weights(weights_dir: str | os.PathLike = "checkpoints") -> Path:
    """Locate torchvision's AlexNet file: ``weights_dir/`` first, then ``$TORCH_HOME/hub/checkpoints/``.

    Raises:
        MissingWeightsError: naming the expected file and where to download it by hand.
    """
    candidates = [Path(weights_dir) / ALEXNET_FILE]
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        candidates.append(Path(torch_home) / "hub" / "checkpoints" / ALEXNET_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise MissingWeightsError(
        f"LPIPS needs the AlexNet backbone weights {candidates[0]} (not found"
        + (f", nor {candidates[1]}" if len(candidates) > 1 else "")
        + f"); download {ALEXNET_URL} and put it there")


def alexnet_to_lpips_keys(state: dict) -> dict:
    """Map torchvision ``features.N.{weight,bias}`` keys to lpips' ``sliceK.N.*`` layout (classifier keys dropped)."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] != "features":
            continue
        idx = int(parts[1])
        slot = next(k for k, lo, hi in _ALEX_SLICES if lo <= idx < hi)
        out[f"slice{slot}.{idx}.{parts[2]}"] = value
    return out


class LPIPSMetric:
    """LPIPS (net='alex', v0.1) as the original computed it (method.md §6.1), offline.

    The linear head comes from the ``lpips`` wheel (``lpips/weights/v0.1/alex.pth``); the AlexNet backbone is built
    random (``pnet_rand=True``, nothing is downloaded) and then loaded strictly from the local torchvision file.

    Args:
        weights_dir: folder holding ``alexnet-owt-7be5be79.pth`` (also looked up in ``$TORCH_HOME/hub/checkpoints``).
        bgr_quirk: feed images in the order given (the original's cv2 BGR arrays); False flips BGR → RGB first.
    Raises:
        MissingWeightsError: the AlexNet file is absent.
    """

    def __init__(self, weights_dir: str | os.PathLike = "checkpoints", bgr_quirk: bool = True):
        import lpips  # imported here: only LPIPS users need the package

        path = find_alexnet_weights(weights_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision's deprecation notice for `pretrained=False`
            self._net = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            self._net.net.load_state_dict(alexnet_to_lpips_keys(state), strict=True)
        except RuntimeError as exc:
            raise MissingWeightsError(f"{path} is not a torchvision AlexNet state dict ({exc})") from exc
        self._net.eval()
        self._spatial = None
        self.bgr_quirk = bool(bgr_quirk)

    def _tensor(self, img: np.ndarray) -> torch.Tensor:
        if not self.bgr_quirk:
            img = img[..., ::-1]
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() / 127.5 - 1.0
        return x[None]

    @torch.no_grad()
    def __call__(self, gt_u8: np.ndarray, pred_u8: np.ndarray) -> float:
        """LPIPS distance of two (H, W, 3) uint8 images (0 for identical ones)."""
        _check_pair(gt_u8, pred_u8)
        return float(self._net(self._tensor(gt_u8), self._tensor(pred_u8)).item())

    @torch.no_grad()
    def spatial_map(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The (H, W) LPIPS map (lpips ``spatial=True``) of two (H, W, 3) images in [0, 1] (float64), in the channel
        order given (DyCheck's masked LPIPS, :func:`mononerf.eval.dycheck_metrics.mlpips`, feeds RGB)."""
        if a.shape != b.shape or a.ndim != 3 or a.shape[-1] != 3:
            raise ValueError(f"expected two (H, W, 3) images of equal shape, got {a.shape} and {b.shape}")
        net = self._spatial_net()

        def tensor(img):
            return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()[None] * 2.0 - 1.0

        return net(tensor(a), tensor(b))[0, 0].double().numpy()

    def _spatial_net(self):
        if self._spatial is None:
            import copy

            self._spatial = copy.deepcopy(self._net)
            self._spatial.spatial = True
        return self._spatial

    @torch.no_grad()
    def masked(self, gt_u8: np.ndarray, pred_u8: np.ndarray, mask: np.ndarray) -> float | None:
        """Mean of the spatial LPIPS map (lpips ``spatial=True``) over the masked pixels; None if the mask is empty."""
        _check_pair(gt_u8, pred_u8)
        mask = _check_mask(mask, gt_u8)
        if not mask.any():
            return None
        smap = self._spatial_net()(self._tensor(gt_u8), self._tensor(pred_u8))[0, 0].numpy()
        return float(smap[mask].astype(np.float64).mean())


def lpips_or_none(use: bool, weights_dir="checkpoints", bgr_quirk: bool = True,
                  label: str = "LPIPS") -> LPIPSMetric | None:
    """An :class:`LPIPSMetric`, or None (not asked for, or its AlexNet file is missing: then a warning says that
    ``label`` is not computed; a table shows n/a, never 0)."""
    if not use:
        return None
    try:
        return LPIPSMetric(weights_dir=weights_dir, bgr_quirk=bgr_quirk)
    except MissingWeightsError as exc:
        warnings.warn(f"{label} not computed: {exc}")
        return None
