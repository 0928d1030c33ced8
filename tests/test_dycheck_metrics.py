"""DyCheck's masked metrics (mononerf/eval/dycheck_metrics.py) on hand-made images whose scores are known."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from mononerf.eval.dycheck_metrics import mlpips, mpsnr, mssim


def _half_mask(h=24, w=32):
    m = np.zeros((h, w), bool)
    m[:, : w // 2] = True
    return m


def test_mpsnr_averages_the_squared_error_over_the_masked_pixels_only():
    m = _half_mask()
    gt = np.zeros((24, 32, 3))
    pred = np.repeat(np.where(m[..., None], 0.1, 0.5), 3, -1)  # error 0.1 inside the mask, 0.5 outside
    assert mpsnr(gt, pred, m) == pytest.approx(20.0, abs=1e-9)  # -10 log10(0.01)
    assert mpsnr(gt, pred) == pytest.approx(-10 * np.log10((0.01 + 0.25) / 2), abs=1e-9)  # no mask: all pixels
    u8 = (pred * 255).round().astype(np.uint8)  # uint8 images are read as /255
    assert mpsnr(np.zeros_like(u8), u8, m) == pytest.approx(-10 * np.log10((26 / 255) ** 2), abs=1e-9)


def test_mssim_sees_only_the_masked_pixels_and_counts_empty_windows_as_one():
    rng = np.random.default_rng(0)
    m = _half_mask()
    gt = rng.random((24, 32, 3))
    pred = np.where(m[..., None], gt, rng.random((24, 32, 3)))  # equal inside the mask, unrelated outside
    assert mssim(gt, pred, m) == pytest.approx(1.0, abs=1e-12)
    assert mssim(gt, pred) < 0.6  # without the mask the right half counts
    m_right = ~m  # now only the unrelated half is scored: windows over the left half alone count as 1
    assert 0.3 < mssim(gt, pred, m_right) < mssim(gt, gt, m_right) == pytest.approx(1.0)


def test_mssim_with_a_full_mask_is_gaussian_ssim():
    # an independent implementation: skimage's Gaussian SSIM (11 taps, sigma 1.5, population covariances) averaged
    # over the positions where the window fits
    rng = np.random.default_rng(1)
    gt = rng.random((40, 48, 3))
    pred = np.clip(gt + 0.1 * rng.standard_normal(gt.shape), 0, 1)
    _, smap = structural_similarity(gt, pred, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0, full=True)
    assert mssim(gt, pred) == pytest.approx(float(smap[5:-5, 5:-5].mean()), abs=1e-9)


def test_mlpips_masks_the_images_and_averages_the_map_over_the_mask():
    m = _half_mask()
    seen = []

    def spatial(a, b):  # a stand-in distance map: the mean absolute difference of the channels
        seen.append((a.copy(), b.copy()))
        return np.abs(a - b).mean(-1)

    gt = np.zeros((24, 32, 3))
    pred = np.repeat(np.where(m[..., None], 0.4, 0.9), 3, -1)
    assert mlpips(spatial, gt, pred, m) == pytest.approx(0.4, abs=1e-12)
    assert np.all(seen[0][1][~m] == 0)  # the network saw the masked images
    with pytest.raises(ValueError, match="LPIPS map"):
        mlpips(lambda a, b: np.zeros((3, 3)), gt, pred, m)
