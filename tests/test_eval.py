"""Tests of the evaluation metrics and the multi-view evaluation (method.md §6.1)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision
from skimage.metrics import structural_similarity

from mononerf.errors import MissingWeightsError, MonoNeRFError, SceneFormatError
from mononerf.eval import metrics
from mononerf.eval.evaluate import evaluate_run, find_step_dirs, format_table
from mononerf.eval.metrics import LPIPSMetric, masked_psnr, masked_ssim, psnr, ssim

ROOT = Path(__file__).resolve().parents[1]


def _img(seed: int, h: int = 64, w: int = 80) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _smooth(seed: int, h: int = 64, w: int = 80) -> np.ndarray:
    return cv2.GaussianBlur(_img(seed, h, w), (0, 0), 3)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    """A torchvision AlexNet state dict (random init, fixed seed) under the official file name."""
    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(), d / metrics.ALEXNET_FILE)
    return d


@pytest.fixture(scope="module")
def lpips_metric(weights_dir) -> LPIPSMetric:
    return LPIPSMetric(weights_dir=weights_dir)


def test_psnr_identical_matches_cv2_epsilon():
    a = _img(0)
    # cv2.PSNR = 20·log10(255 / (0 + DBL_EPSILON)) ≈ 361.20 dB for identical images (not inf)
    assert psnr(a, a) == pytest.approx(cv2.PSNR(a, a), abs=1e-9)
    assert psnr(a, a) == pytest.approx(20 * np.log10(255 / np.finfo(float).eps))


def test_psnr_known_noise_closed_form():
    a = np.full((10, 20, 3), 100, np.uint8)
    b = a.copy()
    b[:5] += 10  # half the pixels off by 10 → MSE = 100 / 2 = 50
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 50.0), abs=1e-9)
    c, d = _img(1), _img(2)
    assert psnr(c, d) == pytest.approx(cv2.PSNR(c, d), abs=1e-9)


def test_masked_psnr_uses_masked_pixels_only():
    a = np.full((10, 20, 3), 100, np.uint8)
    b = a.copy()
    b[:5] += 10
    top = np.zeros((10, 20), bool)
    top[:5] = True
    assert masked_psnr(a, b, top) == pytest.approx(10 * np.log10(255**2 / 100.0), abs=1e-9)
    assert masked_psnr(a, b, ~top) > 300  # untouched half: cv2-style epsilon value
    assert masked_psnr(a, b, np.zeros_like(top)) is None
    assert masked_psnr(a, b, np.ones_like(top)) == pytest.approx(psnr(a, b))


def test_ssim_equals_skimage_and_identity():
    a, b = _smooth(3), _smooth(4)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) == pytest.approx(structural_similarity(a, b, channel_axis=-1), abs=1e-12)
    assert ssim(a, b) < 0.9
    full = np.ones(a.shape[:2], bool)
    assert masked_ssim(a, b, full) == pytest.approx(ssim(a, b), abs=1e-9)
    half = np.zeros_like(full)
    half[:, :40] = True
    b2 = a.copy()
    b2[:, 40:] = b[:, 40:]  # left half identical → masked SSIM on the left interior is ~1
    assert masked_ssim(a, b2, half & (np.arange(80) < 30)[None]) == pytest.approx(1.0)


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="equal shape"):
        ssim(_img(0, 16, 16), _img(0, 16, 18))


def test_alexnet_key_mapping(weights_dir):
    state = torch.load(weights_dir / metrics.ALEXNET_FILE, weights_only=True)
    mapped = metrics.alexnet_to_lpips_keys(state)
    assert set(mapped) == {f"slice{s}.{i}.{p}" for s, i in [(1, 0), (2, 3), (3, 6), (4, 8), (5, 10)]
                           for p in ("weight", "bias")}
    assert torch.equal(mapped["slice3.6.weight"], state["features.6.weight"])


def test_lpips_loads_local_weights_and_scores(lpips_metric, weights_dir):
    state = torch.load(weights_dir / metrics.ALEXNET_FILE, weights_only=True)
    assert torch.equal(lpips_metric._net.net.slice1[0].weight, state["features.0.weight"])
    # the linear head comes from the lpips wheel (non-negative, not all zero)
    lin = lpips_metric._net.lin0.model[-1].weight
    assert (lin >= 0).all() and lin.abs().sum() > 0
    a, b = _smooth(5), _smooth(6)
    assert lpips_metric(a, a) == pytest.approx(0.0, abs=1e-7)
    d = lpips_metric(a, b)
    assert d > 1e-4
    m = np.zeros(a.shape[:2], bool)
    m[16:48, 20:60] = True
    assert lpips_metric.masked(a, a, m) == pytest.approx(0.0, abs=1e-7)
    assert lpips_metric.masked(a, b, m) > 1e-4
    assert lpips_metric.masked(a, b, np.zeros_like(m)) is None


def test_lpips_bgr_quirk_changes_channel_order(weights_dir):
    a = _smooth(7)
    b = a.copy()
    b[..., 0] = 255 - b[..., 0]  # change one channel only
    bgr, rgb = LPIPSMetric(weights_dir, bgr_quirk=True), LPIPSMetric(weights_dir, bgr_quirk=False)
    assert rgb(a, b) == pytest.approx(bgr(a[..., ::-1].copy(), b[..., ::-1].copy()), rel=1e-5)
    assert rgb(a, b) != pytest.approx(bgr(a, b), rel=1e-3)


def test_lpips_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCH_HOME", raising=False)
    with pytest.raises(MissingWeightsError, match="alexnet-owt-7be5be79.pth") as info:
        LPIPSMetric(weights_dir=tmp_path)
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in str(info.value)


def test_lpips_finds_torch_home(tmp_path, monkeypatch, weights_dir):
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / metrics.ALEXNET_FILE).write_bytes((weights_dir / metrics.ALEXNET_FILE).read_bytes())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert metrics.find_alexnet_weights(tmp_path / "nowhere") == hub / metrics.ALEXNET_FILE


# ---------------------------------------------------------------- end-to-end on a synthetic scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    from mononerf.data.synthetic import generate_scene

    root = tmp_path_factory.mktemp("data")
    generate_scene(root / "s", frames=3, size=(128, 96))
    return root


def _fake_run(run: Path, data: Path, noise: float, seed: int = 0) -> Path:
    """A run dir whose multi-view dump is the resized GT (+ Gaussian noise) for scene 's' at batch index 0."""
    step = run / "multiview" / "step_000010"
    rng = np.random.default_rng(seed)
    for t in range(1, 4):
        (step / f"{t:08d}" / "imgs").mkdir(parents=True)
        for p in range(1, 4):
            gt = cv2.imread(str(data / "s" / "multiview_GT" / f"{t:08d}" / f"cam{p:02d}.jpg"))
            pred = cv2.resize(gt, (gt.shape[1] // 2, gt.shape[0] // 2)).astype(np.float64)
            pred = np.clip(pred + rng.normal(0, noise, pred.shape), 0, 255).round().astype(np.uint8)
            cv2.imwrite(str(step / f"{t:08d}" / "imgs" / f"{p - 1:03d}_00.png"), pred)
    (step / "scenes.json").write_text(json.dumps({"00": "s"}))
    return run


def test_evaluate_run_gt_vs_noise(tmp_path, scene, weights_dir, capsys):
    clean = _fake_run(tmp_path / "clean", scene, noise=0.0)
    noisy = _fake_run(tmp_path / "noisy", scene, noise=20.0)
    (rc,) = evaluate_run(clean, scene, weights_dir=weights_dir)
    (rn,) = evaluate_run(noisy, scene, weights_dir=weights_dir)
    assert len(rc["scenes"]["s"]["frames"]) == 9
    assert rc["mean"]["psnr"] > 300 and rc["mean"]["ssim"] == pytest.approx(1.0)
    assert rc["mean"]["lpips"] == pytest.approx(0.0, abs=1e-6)
    # noise σ=20 → PSNR ≈ 10·log10(255²/400) ≈ 22.1 dB (a bit higher from clipping)
    assert 20.0 < rn["mean"]["psnr"] < 26.0
    assert rn["mean"]["ssim"] < 0.9 and rn["mean"]["lpips"] > rc["mean"]["lpips"]
    # synthetic scenes carry multi-view motion masks: the moving region is scored too
    assert rn["dynamic_mean"] is not None and 15.0 < rn["dynamic_mean"]["psnr"] < 30.0 and not rn["notes"]
    bare = tmp_path / "bare"  # the same scene without masks (like the real dataset): no dynamic scores, a note
    (bare / "s").mkdir(parents=True)
    (bare / "s" / "multiview_GT").symlink_to(scene / "s" / "multiview_GT", target_is_directory=True)
    (rb,) = evaluate_run(noisy, bare, weights_dir=weights_dir, write=False, verbose=False)
    assert rb["dynamic_mean"] is None and rb["notes"]
    assert rb["mean"]["psnr"] == pytest.approx(rn["mean"]["psnr"])
    saved = json.loads((noisy / "multiview" / "step_000010" / "results.json").read_text())
    assert saved["mean"]["psnr"] == pytest.approx(rn["mean"]["psnr"])
    out = capsys.readouterr().out
    assert "PSNR" in out and f"{rn['mean']['psnr']:.2f}" in out


def test_evaluate_dynamic_masks_and_no_lpips(tmp_path, scene):
    run = _fake_run(tmp_path / "r", scene, noise=10.0)
    # masks via a mapping name → dir (scene copy with multiview_masks added)
    sdir = tmp_path / "s_masked"
    sdir.mkdir()
    (sdir / "multiview_GT").symlink_to(scene / "s" / "multiview_GT", target_is_directory=True)
    for t in range(1, 4):
        (sdir / "multiview_masks" / f"{t:08d}").mkdir(parents=True)
        for p in range(1, 4):
            m = np.zeros((96, 128), np.uint8)
            m[20:70, 30:100] = 255
            cv2.imwrite(str(sdir / "multiview_masks" / f"{t:08d}" / f"cam{p:02d}.png"), m)
    with pytest.warns(UserWarning, match="LPIPS not computed"):
        (res,) = evaluate_run(run, {"s": sdir}, weights_dir=tmp_path / "none", write=False, verbose=False)
    assert res["mean"]["lpips"] is None
    assert res["dynamic_mean"]["psnr"] == pytest.approx(res["mean"]["psnr"], abs=1.0)
    assert res["dynamic_mean"]["lpips"] is None
    assert "n/a" in format_table(res)
    (plain,) = evaluate_run(run, scene, use_lpips=False, write=False, verbose=False)
    assert plain["mean"]["psnr"] == pytest.approx(res["mean"]["psnr"])


def test_branch_scores_of_a_dump(tmp_path, scene, capsys):
    """A dump whose dynamic-only render is the GT, whose static-only render is noisy and whose blending map is the
    motion mask: dpsnr_d is the exact score, dpsnr_s the noisy one, blend_in 1 and blend_out 0; a dump without
    the branch renders (the original's layout) reports them as None."""
    from mononerf.eval.renders import read_blend_png, write_blend_png

    run = _fake_run(tmp_path / "r", scene, noise=20.0)
    step = run / "multiview" / "step_000010"
    rng = np.random.default_rng(1)
    (plain,) = evaluate_run(run, scene, use_lpips=False, write=False, verbose=False)
    assert all(plain["scenes"]["s"][k] is None for k in ("dpsnr_s", "dpsnr_d", "blend_in", "blend_out"))
    for t in range(1, 4):
        for sub in ("imgs_static", "imgs_dynamic", "blend"):
            (step / f"{t:08d}" / sub).mkdir()
        for p in range(1, 4):
            gt = cv2.imread(str(scene / "s" / "multiview_GT" / f"{t:08d}" / f"cam{p:02d}.jpg"))
            h, w = gt.shape[0] // 2, gt.shape[1] // 2
            exact = cv2.resize(gt, (w, h))
            noisy = np.clip(exact + rng.normal(0, 20.0, exact.shape), 0, 255).round().astype(np.uint8)
            mask = cv2.imread(str(scene / "s" / "multiview_masks" / f"{t:08d}" / f"cam{p:02d}.png"), 0)
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST) > 0
            name = f"{p - 1:03d}_00.png"
            cv2.imwrite(str(step / f"{t:08d}" / "imgs_dynamic" / name), exact)
            cv2.imwrite(str(step / f"{t:08d}" / "imgs_static" / name), noisy)
            write_blend_png(step / f"{t:08d}" / "blend" / name, mask.astype(np.float64))
    blend = read_blend_png(step / f"{1:08d}" / "blend" / "000_00.png")
    assert blend.dtype == np.float64 and set(np.unique(blend)) <= {0.0, 1.0}
    (res,) = evaluate_run(run, scene, use_lpips=False)
    sc = res["scenes"]["s"]
    assert sc["dpsnr_d"] > 300 and 15.0 < sc["dpsnr_s"] < 30.0
    assert sc["blend_in"] == pytest.approx(1.0) and sc["blend_out"] == pytest.approx(0.0)
    assert sc["psnr"] == pytest.approx(res["mean"]["psnr"]) and sc["dpsnr"] == pytest.approx(res["dynamic_mean"]["psnr"])
    saved = json.loads((step / "results.json").read_text())
    for key in ("psnr", "ssim", "dpsnr", "dssim", "dpsnr_s", "dpsnr_d", "blend_in", "blend_out"):
        assert saved["scenes"]["s"][key] == pytest.approx(sc[key]) and saved["scores"][key] == pytest.approx(sc[key])
    out = capsys.readouterr().out
    assert "dPSNR_s" in out and "blend_out" in out and f"{sc['dpsnr_s']:.2f}" in out
    # the comparison picture: 2 views x 7 panels (GT | blended | static | dynamic | blending | depth | mask), 2x
    from mononerf.eval.pictures import PANELS, pick_views, write_picture

    assert pick_views([1, 2, 3], [1, 2, 3], 2) == [(1, 2), (3, 2)]  # novel views (camera != time), spread out
    h, w = exact.shape[:2]
    (step / f"{1:08d}" / "disp").mkdir()  # a disparity for the first view only (older dumps have none)
    write_blend_png(step / f"{1:08d}" / "disp" / "001_00.png", np.tile(np.linspace(0.2, 0.9, w), (h, 1)))
    png = write_picture(step, scene, tmp_path / "pic" / "grid.png", views=2)
    pic = cv2.imread(str(png))
    depth_panel = pic[14:14 + 2 * h, -4 * w - 2:-2 * w - 2]  # first row, the panel before the mask
    assert depth_panel[:, 0].astype(int).sum() != depth_panel[:, -1].astype(int).sum()  # near and far differ
    assert depth_panel.std() > 10
    assert pic[2 * h + 14 + 2 + 14:, -4 * w - 2:-2 * w - 2].max() == 0  # second row: no disparity, black
    assert pic.shape == (2 * (2 * h + 14) + 2, len(PANELS) * 2 * w + (len(PANELS) - 1) * 2, 3)
    mask_panel = pic[14:14 + 2 * h, -2 * w:]  # first row, last panel: the motion mask of view (t1, cam2)
    ref = cv2.imread(str(scene / "s" / "multiview_masks" / f"{1:08d}" / "cam02.png"), 0)
    ref = cv2.resize(cv2.resize(ref, (w, h), interpolation=cv2.INTER_NEAREST), (2 * w, 2 * h),
                     interpolation=cv2.INTER_NEAREST) > 0
    assert ((mask_panel[..., 0] > 127) == ref).mean() > 0.99
    with pytest.raises(SceneFormatError, match="branch renders"):
        write_picture(_fake_run(tmp_path / "plain", scene, noise=0.0) / "multiview" / "step_000010", scene,
                      tmp_path / "x.png")


def test_grid_dumps_pick_evenly_spaced_views_and_evaluate(tmp_path, scene):
    from mononerf.eval.renders import grid_indices

    assert grid_indices(12, 4) == [0, 4, 7, 11] and grid_indices(12, 2) == [0, 11] and grid_indices(12, 1) == [0]
    assert grid_indices(5, None) == list(range(5)) == grid_indices(5, 9)
    with pytest.raises(MonoNeRFError, match="--grid 0"):
        grid_indices(5, 0)
    run = _fake_run(tmp_path / "r", scene, noise=10.0)
    step = run / "multiview" / "step_000010"
    full = evaluate_run(run, scene, use_lpips=False, write=False, verbose=False)[0]["scenes"]["s"]["frames"]
    shutil.rmtree(step / f"{2:08d}")  # keep times 1 and 3 x cameras 1 and 3, as grid_indices(3, 2) renders
    for t in (1, 3):
        (step / f"{t:08d}" / "imgs" / "001_00.png").unlink()
    (res,) = evaluate_run(run, scene, use_lpips=False, write=False, verbose=False)
    rows = res["scenes"]["s"]["frames"]
    assert res["grid"] == [2, 2] and [(r["time"], r["pose"]) for r in rows] == [(1, 1), (1, 3), (3, 1), (3, 3)]
    same = {(r["time"], r["pose"]): r["psnr"] for r in full}
    assert all(r["psnr"] == pytest.approx(same[(r["time"], r["pose"])]) for r in rows)
    h, w = cv2.imread(str(step / f"{1:08d}" / "imgs" / "000_00.png")).shape[:2]
    assert res["size"] == [w, h] and f"(2 times x 2 cameras, {w}x{h} renders)" in format_table(res)


def test_evaluate_errors(tmp_path, scene):
    with pytest.raises(MonoNeRFError, match="no multi-view step dirs"):
        find_step_dirs(tmp_path)
    run = _fake_run(tmp_path / "r", scene, noise=0.0)
    (run / "multiview" / "step_000010" / "scenes.json").write_text(json.dumps({"00": "other"}))
    with pytest.raises(SceneFormatError, match="other"):
        evaluate_run(run, scene, use_lpips=False, verbose=False)
    (run / "multiview" / "step_000010" / "scenes.json").write_text(json.dumps({"00": "s"}))
    (scene / "s" / "multiview_GT" / f"{3:08d}" / "cam03.jpg").rename(tmp_path / "moved.jpg")
    try:
        with pytest.raises(SceneFormatError, match="cam03.jpg"):
            evaluate_run(run, scene, use_lpips=False, verbose=False)
    finally:
        (tmp_path / "moved.jpg").rename(scene / "s" / "multiview_GT" / f"{3:08d}" / "cam03.jpg")


def test_missing_scenes_json_falls_back_with_warning(tmp_path, scene):
    run = _fake_run(tmp_path / "r", scene, noise=0.0)
    (run / "multiview" / "step_000010" / "scenes.json").unlink()
    with pytest.warns(UserWarning, match="original's scene order"), pytest.raises(SceneFormatError, match="Balloon2"):
        evaluate_run(run, scene, use_lpips=False, verbose=False)


def test_cli_one_line_error_and_success(tmp_path, scene):
    cmd = [sys.executable, "-m", "mononerf.eval", str(tmp_path / "empty"), "--no-lpips"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: no multi-view")
    run = _fake_run(tmp_path / "r", scene, noise=5.0)
    r = subprocess.run([sys.executable, "train/evaluation.py", str(run), "--data", str(scene), "--no-lpips"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "mean" in r.stdout and "n/a" in r.stdout
