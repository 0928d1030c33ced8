"""DyCheck's masked image metrics: mPSNR, mSSIM, mLPIPS over co-visibility masks (docs/evaluation.md, "DyCheck").

DyCheck (Gao et al., "Monocular Dynamic View Synthesis: A Reality Check", NeurIPS 2022; its iPhone set is the
field's benchmark) scores each validation view over the pixels its co-visibility mask keeps (seen by the training
camera at other times) and reports the means over the split's views. As its metric code defines them:

* **mPSNR**: the squared error of every channel, averaged over the masked pixels (the (H, W) mask broadcast over the
  3 channels; the count clipped below at 1e-6), as ``-10 log10`` of that mean; images in [0, 1].
* **mSSIM**: SSIM with an 11-tap Gaussian window (sigma 1.5), k1 = 0.01, k2 = 0.03, range 1, where every local mean
  is a *partial convolution* (Liu et al. 2018): the window sums only masked pixels and is rescaled by the share of
  the window they fill; a window without any masked pixel gives 0 for every statistic. The two 1-D blurs run along
  the width, then the height, each over the positions where the window fits ("valid"). Variances are clipped at 0
  and the covariance's magnitude at their geometric mean. The score is the mean of the SSIM map over *every* valid
  position and channel: a window with no masked pixel counts as 1.
* **mLPIPS**: the spatial LPIPS map (AlexNet, ``spatial=True``) of the two images *multiplied by the mask*, averaged
  over the masked pixels.

Plain functions of arrays; the protocol that renders DyCheck's validation cameras is part of the iPhone loader's
work (docs/evaluation.md says what exists).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.signal import convolve2d

EPS = 1e-6  # DyCheck's clip of a masked mean's denominator


def _unit(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or float in [0, 1] → float64 in [0, 1]."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {img.shape}")
    return img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)


def _mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) or (H, W, 1), bool / {0, 1} / [0, 1] → (H, W) float64 (None: every pixel)."""
    if mask is None:
        return np.ones(shape[:2])
    m = np.asarray(mask, dtype=np.float64)
    if m.ndim == 3 and m.shape[-1] == 1:
        m = m[..., 0]
    if m.shape != tuple(shape[:2]):
        raise ValueError(f"mask shape {np.shape(mask)} does not match the image's (H, W) {tuple(shape[:2])}")
    return m


def masked_mean(x: np.ndarray, mask: np.ndarray) -> float:
    """sum(x · m) / max(sum(m), 1e-6), with the (H, W) mask broadcast over x's trailing channels."""
    m = np.broadcast_to(mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim)), x.shape)
    return float((x * m).sum() / max(float(m.sum()), EPS))


def mpsnr(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """DyCheck's masked PSNR in dB of two (H, W, 3) images (uint8 or [0, 1] floats); mask (H, W)."""
    a, b = _unit(gt), _unit(pred)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} and {b.shape}")
    return -10.0 * np.log10(masked_mean((a - b) ** 2, _mask(mask, a.shape)))


def _gaussian(size: int, sigma: float) -> np.ndarray:
    half = size // 2
    shift = (2 * half - size + 1) / 2
    f = np.exp(-0.5 * ((np.arange(size) - half + shift) / sigma) ** 2)
    return f / f.sum()


def _partial_blur(z: np.ndarray, m: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One 1-D blur (``f`` a row or a column kernel) of z (H, W) over the masked pixels m (H, W), valid positions."""
    zs = convolve2d(z * m, f, mode="valid")
    ms = convolve2d(m, np.ones_like(f), mode="valid")
    inside = ms != 0
    out = np.where(inside, zs * f.size / np.where(inside, ms, 1.0), 0.0)
    return out, inside.astype(np.float64)


def mssim(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None, filter_size: int = 11,
          filter_sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03, max_val: float = 1.0) -> float:
    """DyCheck's masked SSIM of two (H, W, 3) images (uint8 or [0, 1] floats); mask (H, W). See the module."""
    a, b = _unit(gt), _unit(pred)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} and {b.shape}")
    m = _mask(mask, a.shape)
    g = _gaussian(filter_size, filter_sigma)

    def blur(z):  # per channel: along the width, then along the height
        out = []
        for c in range(z.shape[-1]):
            zc, mc = _partial_blur(z[..., c], m, g[None, :])
            zc, _ = _partial_blur(zc, mc, g[:, None])
            out.append(zc)
        return np.stack(out, -1)

    mu0, mu1 = blur(a), blur(b)
    mu00, mu11, mu01 = mu0 * mu0, mu1 * mu1, mu0 * mu1
    s00 = np.maximum(0.0, blur(a * a) - mu00)
    s11 = np.maximum(0.0, blur(b * b) - mu11)
    s01 = blur(a * b) - mu01
    s01 = np.sign(s01) * np.minimum(np.sqrt(s00 * s11), np.abs(s01))
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    ssim_map = ((2 * mu01 + c1) * (2 * s01 + c2)) / ((mu00 + mu11 + c1) * (s00 + s11 + c2))
    return float(ssim_map.mean())


def mlpips(spatial_lpips: Callable[[np.ndarray, np.ndarray], np.ndarray], gt: np.ndarray, pred: np.ndarray,
           mask: np.ndarray | None = None) -> float:
    """DyCheck's masked LPIPS: ``spatial_lpips`` of the masked images (two (H, W, 3) arrays in [0, 1] → an (H, W)
    distance map, e.g. lpips' AlexNet with ``spatial=True`` on inputs scaled to [-1, 1]), averaged over the mask."""
    a, b = _unit(gt), _unit(pred)
    m = _mask(mask, a.shape)
    dist = np.asarray(spatial_lpips(a * m[..., None], b * m[..., None]), dtype=np.float64)
    if dist.shape != m.shape:
        raise ValueError(f"the LPIPS map has shape {dist.shape}, expected {m.shape}")
    return masked_mean(dist, m)
