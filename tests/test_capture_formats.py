"""The Nerfies / HyperNeRF and DyCheck iPhone layouts (mononerf/data/capture.py), the synthetic writer of each layout
(mononerf/data/synthetic_formats.py) and the dycheck protocol (mononerf/eval/dycheck.py); docs/datasets.md."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from mononerf.data.formats import detect_format
from mononerf.data.dataset import read_scenes
from mononerf.data.synthetic import generate_scene
from mononerf.errors import MonoNeRFError, SceneFormatError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> Path:
    """One synthetic scene (8 frames, 96x64 full size) in the three layouts."""
    root = tmp_path_factory.mktemp("layouts")
    for fmt in ("llff", "nerfies", "iphone"):
        generate_scene(root / fmt, frames=8, size=(96, 64), fmt=fmt)
    return root


def test_each_layout_loads_to_the_same_cameras_rays_and_frames(layouts):
    assert [detect_format(layouts / f) for f in ("llff", "nerfies", "iphone")] == ["llff", "nerfies", "iphone"]
    llff, nerfies, iphone = read_scenes([layouts / f for f in ("llff", "nerfies", "iphone")], "auto")
    ref_o, ref_d = llff.cameras.rays()
    for s in (nerfies, iphone):
        assert s.resampled_frames == 0  # the writer's cameras are centred pinholes: nothing resampled
        np.testing.assert_allclose(s.poses, llff.poses, atol=1e-6)
        np.testing.assert_allclose(s.render_poses, llff.render_poses, atol=1e-6)
        assert s.scale == pytest.approx(llff.scale, rel=1e-6)
        o, d = s.cameras.rays()
        torch.testing.assert_close(o, ref_o, atol=1e-6, rtol=0)
        torch.testing.assert_close(d, ref_d, atol=1e-6, rtol=0)
        for key in ("images", "motion_masks", "flow_fwd", "flow_bwd", "flow_fwd_mask", "flow_bwd_mask"):
            np.testing.assert_array_equal(getattr(s, key), getattr(llff, key), err_msg=key)
    np.testing.assert_array_equal(nerfies.disp, llff.disp)
    # the iPhone layout's disparity is the loader's 1 / LiDAR depth (the writer gave it the true depth)
    np.testing.assert_allclose(iphone.disp, llff.disp, rtol=1e-6)
    assert (llff.format, nerfies.format, iphone.format) == ("llff", "nerfies", "iphone")


def test_validation_views_carry_their_own_cameras_and_covisibility(layouts):
    nerfies, iphone = read_scenes([layouts / "nerfies", layouts / "iphone"], "auto")
    llff = read_scenes([layouts / "llff"])[0]
    assert len(iphone.eval_views) == 16 and len(llff.eval_views) == 0
    first = iphone.eval_views[0]
    assert (first.name, first.frame, first.camera_id) == ("1_00000", 0, 1)
    # camera 1 stands where training frame 0 stood, with a focal 0.9x the training one
    np.testing.assert_allclose(first.camera.c2w[0].numpy(), llff.poses[0, :, :4], atol=1e-6)
    assert float(first.camera.fx[0]) == pytest.approx(0.9 * llff.focal, rel=1e-6)
    assert first.image.shape == (32, 48, 3)
    assert all(v.covisible is not None and 0.2 < v.covisible.mean() < 1.0 for v in iphone.eval_views)
    assert all(v.covisible is None for v in nerfies.eval_views)
    assert not any(isinstance(x, np.ndarray) for v in iphone.eval_views for x in vars(v).values())  # read lazily
    # the view at frame 0 seen by the training camera's own render: where its pixels coincide (camera 1 at time 0
    # is camera 0 zoomed out by 0.9), the centre pixel is the same surface point
    c = iphone.images[0][16, 24]
    np.testing.assert_allclose(first.image[16, 24], c, atol=0.1)


def shift_capture(src: Path, dst: Path, dx: int) -> None:
    """A copy of a synthetic capture whose training camera's principal point is ``dx`` px right of the centre."""
    from mononerf.data.synthetic_formats import shift_principal_point

    shutil.copytree(src, dst)
    shift_principal_point(dst, dx)


def test_an_off_centre_camera_is_kept_and_its_rays_meet_the_same_surfaces(layouts, tmp_path):
    """A capture whose principal point is 3 px right of the centre: the loader keeps its frames and camera as they
    are, and every ray the model trains on, its NDC box and its projections follow that camera, so pixel (x + 3, y)
    of the shifted capture is pixel (x, y) of the centred one."""
    from mononerf.data.check import format_summary, scene_summary
    from mononerf.data.dataset import MultiSceneDataset
    from mononerf.geometry.rays import invert_pose
    from mononerf.render.images import prepare_rays

    dx = 3
    for kind in ("nerfies", "iphone"):
        shift_capture(layouts / kind, tmp_path / kind, dx)
    ref, nerfies, iphone = read_scenes([layouts / "nerfies", tmp_path / "nerfies", tmp_path / "iphone"], "auto")
    for s in (nerfies, iphone):
        assert s.resampled_frames == 0  # kept as they are: no resampling blur
        fx, fy, cx, cy = s.frame_intrinsics
        assert (fy, cy) == (fx, 16.0) and cx == pytest.approx(24.0 + dx)
        np.testing.assert_array_equal(s.images[:, :, dx:], ref.images[:, :, :-dx])
        np.testing.assert_allclose(s.disp[:, :, dx:], ref.disp[:, :, :-dx], rtol=1e-6)
        np.testing.assert_array_equal(s.flow_fwd[:, :, dx:], ref.flow_fwd[:, :, :-dx])
        np.testing.assert_allclose(s.poses, ref.poses, atol=1e-6)
    summary = format_summary(scene_summary(nerfies))
    assert f"principal point ({24.0 + dx}, 16.0) (+{dx}, +0 px from the centre)" in summary
    assert "cameras within" in summary and "not forward-facing" not in summary
    # the training rays: the dataset's camera, its NDC box and its projection
    d_ref, d = MultiSceneDataset([ref]), MultiSceneDataset([nerfies])
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(45.0), indexing="ij")
    xs, ys = xs.reshape(1, -1), ys.reshape(1, -1)
    c2w = d.poses[:, 2, :, :4]
    o_ref, dir_ref = d_ref.camera.rays(xs, ys, c2w)
    o, dirs = d.camera.rays(xs + dx, ys, c2w)
    torch.testing.assert_close(dirs, dir_ref, atol=1e-5, rtol=0)
    ndc_ref, ndc = prepare_rays(o_ref, dir_ref, d_ref.camera), prepare_rays(o, dirs, d.camera)
    # the off-centre NDC box is the centred one moved by 2·dx/W: the box fits the image either way
    torch.testing.assert_close(ndc.origins[..., 0], ndc_ref.origins[..., 0] + 2 * dx / 48, atol=1e-5, rtol=0)
    torch.testing.assert_close(ndc.directions, ndc_ref.directions, atol=1e-5, rtol=0)
    pts = ndc.origins + 0.7 * ndc.directions  # a point on each ray, in the NDC box
    world = d.camera.ndc_to_world(pts)
    torch.testing.assert_close(world, d_ref.camera.ndc_to_world(ndc_ref.origins + 0.7 * ndc_ref.directions),
                               atol=1e-4, rtol=1e-5)
    # projected into another frame's feature map: 3 px right of where the centred camera sees it
    w2c = invert_pose(d.poses[:, 5, :, :4])
    torch.testing.assert_close(d.camera.project(world, w2c),
                               d_ref.camera.project(world, w2c) + torch.tensor([dx, 0.0]), atol=1e-3, rtol=0)


def test_capture_errors_name_the_file_and_the_fix(layouts, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(layouts / "iphone", bad)
    shutil.rmtree(bad / "flow")
    with pytest.raises(SceneFormatError, match=r"flow: missing folder .*python -m mononerf.preprocess flow"):
        read_scenes([bad], "iphone")
    shutil.copytree(layouts / "iphone" / "flow", bad / "flow")
    cam = bad / "camera" / "0_00003.json"
    d = json.loads(cam.read_text())
    d["skew"] = 0.5
    cam.write_text(json.dumps(d))
    with pytest.raises(SceneFormatError, match=r"0_00003.json: skew 0.5 is not supported"):
        read_scenes([bad], "iphone")
    d["skew"] = 0.0
    cam.write_text(json.dumps(d))
    # a validation image is checked at load time from its header (its pixels are read when evaluation asks)
    iio.imwrite(bad / "rgb" / "2x" / "2_00005.png", np.zeros((10, 12, 3), np.uint8))
    with pytest.raises(SceneFormatError, match=r"2_00005.png: 12x10 but its camera says 48x32"):
        read_scenes([bad], "iphone")
    (bad / "scene.json").unlink()
    with pytest.raises(SceneFormatError, match=r"scene.json: missing file"):
        read_scenes([bad], "iphone")
    with pytest.raises(SceneFormatError, match="not a scene folder of a known format"):
        detect_format(tmp_path)
    with pytest.raises(SceneFormatError, match="unknown scene format 'colmap'"):
        read_scenes([bad], "colmap")
    with pytest.raises(MonoNeRFError, match="unknown --format"):
        generate_scene(tmp_path / "x", frames=3, size=(64, 48), fmt="colmap")


def test_the_writer_cli_names_the_layout(tmp_path, capsys):
    from mononerf.data.cli import synthetic_main as main

    assert main(["--out", str(tmp_path / "n"), "--frames", "3", "--size", "64x48", "--format", "nerfies"]) == 0
    assert "(nerfies layout)" in capsys.readouterr().out
    assert detect_format(tmp_path / "n") == "nerfies" and not (tmp_path / "n" / "poses_bounds.npy").exists()
    # rewriting the folder in another layout replaces the first one's files
    assert main(["--out", str(tmp_path / "n"), "--frames", "3", "--size", "64x48"]) == 0
    assert detect_format(tmp_path / "n") == "llff" and not (tmp_path / "n" / "dataset.json").exists()
    # a training camera off the centre, as a phone's: the loader reads its principal point
    assert main(["--out", str(tmp_path / "p"), "--frames", "3", "--size", "64x48", "--format", "iphone",
                 "--principal-shift", "2"]) == 0
    assert read_scenes([tmp_path / "p"], "auto")[0].frame_intrinsics[2] == pytest.approx(16.0 + 2)
    capsys.readouterr()
    assert main(["--out", str(tmp_path / "q"), "--frames", "3", "--size", "64x48", "--principal-shift", "2"]) != 0
    assert "--principal-shift needs --format nerfies or iphone" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- the dycheck protocol
def _argv(dirs, basedir: Path, extra=()) -> list[str]:
    from tests.test_train import TINY

    lists = ", ".join(f'"{d}"' for d in dirs)
    argv = ["-c", str(ROOT / "mononerf_conf/exp/synthetic/multiscene.conf"), "--device", "cpu",
            "--set", f"info.basedir={basedir}/", "--set", f"info.dataset_file_lists=[{lists}]",
            "--set", "train.dataset_type=auto"]
    for item in TINY + list(extra):
        argv += ["--set", item]
    return argv


def test_the_three_layouts_train_together_and_score_under_their_protocols(layouts, tmp_path, capsys):
    """One run of an LLFF, a Nerfies and an iPhone-layout scene (train.dataset_type = auto); --eval_only --protocol
    dycheck renders and scores the validation cameras of the two that have them; the multi-view protocol applies
    to all three (the synthetic layouts keep multiview_GT). The Nerfies capture's camera is off-centre by 2 px:
    the run trains and renders it with its own principal point."""
    from mononerf.config import load_config
    from mononerf.eval import dycheck, renders
    from mononerf.eval.evaluate import evaluate_run
    from mononerf.eval.video import load_run
    from mononerf.train.cli import main as train_main
    from mononerf.train.trainer import Trainer

    shift_capture(layouts / "nerfies", tmp_path / "scenes" / "nerfies", 2)
    dirs = [layouts / "llff", tmp_path / "scenes" / "nerfies", layouts / "iphone"]
    argv = _argv(dirs, tmp_path, ["train.N_static_iters=1", "train.N_iters=1"])
    trainer = Trainer(load_config(argv), progress=False)
    assert [s.format for s in trainer.data.scenes] == ["llff", "nerfies", "iphone"]
    trainer.fit()
    cx = trainer.pipeline.renderer.features.camera.cx  # what the feature lookups project with
    assert cx.tolist() == pytest.approx([24.0, 26.0, 24.0])
    assert train_main(argv + ["--eval_only", "--protocol", "dycheck"]) == 0
    (dump,) = (trainer.run_dir / "multiview").glob("step_*")  # the newest checkpoint's
    info = json.loads((dump / "dycheck" / "dump.json").read_text())
    assert info["protocol"] == "dycheck" and list(info["scenes"]) == ["nerfies", "iphone"]
    assert all(len(v) == 16 for v in info["scenes"].values())
    assert iio.imread(dump / "dycheck" / "iphone" / "1_00003.png").shape == (32, 48, 3)
    res = json.loads((dump / dycheck.RESULTS_FILE).read_text())
    assert "[protocol dycheck]" in capsys.readouterr().out
    rows = res["scenes"]["iphone"]["views"]
    assert len(rows) == 16 and all(np.isfinite(r["mpsnr"]) and 0 < r["mssim"] <= 1 for r in rows)
    assert res["scenes"]["iphone"]["mean"]["mpsnr"] == pytest.approx(np.mean([r["mpsnr"] for r in rows]))
    assert res["mean"]["mpsnr"] == pytest.approx(np.mean([s["mean"]["mpsnr"] for s in res["scenes"].values()]))
    # the Nerfies layout has no co-visibility masks: its views are scored over every pixel, and the result says so
    assert all(r["covisible"] is None for r in res["scenes"]["nerfies"]["views"])
    assert res["notes"] == ["nerfies: views without a co-visibility mask were scored over every pixel"]
    pic = cv2.imread(str(dycheck.write_picture(res, {d.name: d for d in dirs}, tmp_path / "dc.png", views=2)))
    assert pic.shape[0] == 4 * (14 + 2 * 32) and pic.shape[1] == 5 * 2 * 48  # 2 views x 2 scenes, 5 panels, 2x

    pipeline, step = load_run(trainer.run_dir, "cpu")
    # a camera's rays in the scene's NDC box: the training camera's are render_views', to the bit
    from mononerf.eval.scene_render import SceneRenderer
    from mononerf.geometry.cameras import Cameras, Pinhole
    from mononerf.geometry.rays import get_rays
    from mononerf.render.images import prepare_rays

    sr = SceneRenderer(pipeline, 2)
    d, b = sr.pipeline.data, sr.scene
    got = sr.camera_rays(Cameras.from_llff(d.poses[b, 2:3]))
    o, dd = get_rays(d.height, d.width, d.focals[b:b + 1], d.poses[b, 2:3, :, :4])
    ref = prepare_rays(o, dd, Pinhole.centred(float(d.height), float(d.width), d.focals[b:b + 1]))
    assert all(torch.equal(x, y) for x, y in zip(got, ref))
    with torch.inference_mode():
        mv = renders.testset_all(pipeline, step, grid=2, folder=tmp_path / "mv", downscale=2)
    (mono,) = evaluate_run(mv, {d.name: d for d in dirs}, use_lpips=False, verbose=False)
    assert set(mono["scenes"]) == {"llff", "nerfies", "iphone"}


def test_dycheck_scores_a_known_dump_over_the_covisible_pixels_only(layouts, tmp_path):
    """Renders made by hand: the view's image plus 12 grey levels where the mask keeps pixels and noise elsewhere.
    mPSNR must be the PSNR of the masked pixels alone (26.5 dB or a little more where 255 clips the offset); over
    every pixel the noise pulls it below 15 dB."""
    from mononerf.eval import dycheck
    from mononerf.utils.images import to_uint8

    scene = read_scenes([layouts / "iphone"], "auto")[0]
    views = scene.eval_views[:3]
    step = tmp_path / "step_000001"
    (step / "dycheck" / "iphone").mkdir(parents=True)
    rng = np.random.default_rng(0)
    expected, unmasked = [], []
    for v in views:
        gt = to_uint8(v.image).astype(np.int32)
        pred = np.where(v.covisible[..., None], np.clip(gt + 12, 0, 255), rng.integers(0, 256, gt.shape))
        pred = pred.astype(np.uint8)
        cv2.imwrite(str(step / "dycheck" / "iphone" / f"{v.name}.png"), pred[..., ::-1])
        err = ((pred.astype(np.float64) - gt) / 255.0) ** 2
        expected.append(-10 * np.log10(err[v.covisible].mean()))
        unmasked.append(-10 * np.log10(err.mean()))
    (step / "dycheck" / "dump.json").write_text(json.dumps({"protocol": "dycheck", "factor": 2,
                                                           "scenes": {"iphone": [v.name for v in views]}}))
    (res,) = dycheck.evaluate_run(step, layouts, use_lpips=False, verbose=False)
    got = [r["mpsnr"] for r in res["scenes"]["iphone"]["views"]]
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert min(got) > 26.5 and max(unmasked) < 15  # 12 grey levels: 20 log10(255 / 12) = 26.5 dB at most clipping
    assert "mPSNR" in dycheck.format_table(res)
    with pytest.raises(MonoNeRFError, match="render them with python -m mononerf.eval.video"):
        dycheck.evaluate_run(tmp_path / "nothing", layouts, use_lpips=False, verbose=False)


def test_preprocessing_writes_a_captures_flow_and_masks_beside_it(layouts, tmp_path, capsys):
    """A capture without its derived files: the flow and motion-mask steps run on its training frames and write
    beside it; the iPhone layout's depth step is skipped (LiDAR); frames / poses are refused. The capture's camera
    is off-centre by 2 px: the steps work on its frames as they are, and the motion masks' epipolar test takes its
    principal point."""
    from mononerf.preprocess import motion_masks
    from mononerf.preprocess.cli import main

    cap, truth_dir = tmp_path / "cap", tmp_path / "truth"
    shift_capture(layouts / "iphone", truth_dir, 2)
    shutil.copytree(truth_dir, cap)
    shutil.rmtree(cap / "flow")
    shutil.rmtree(cap / "motion_masks")
    assert main(["flow", "--out", str(cap), "--flow", "classical"]) == 0
    assert main(["depth", "--out", str(cap)]) == 0 and not (cap / "disp").exists()
    assert main(["motion-masks", "--out", str(cap)]) == 0
    assert not (cap / ".llff_view").exists() and detect_format(cap) == "iphone"
    truth, made = read_scenes([truth_dir, cap], "auto")
    valid = truth.flow_fwd_mask[:-1] > 0
    assert np.abs(made.flow_fwd[:-1] - truth.flow_fwd[:-1])[valid].mean() < 1.0  # pixels, classical flow at 48x32
    assert made.motion_masks.shape == truth.motion_masks.shape
    from mononerf.preprocess.capture import write_view

    view = write_view(cap, "iphone", 2)  # what the steps read: the frames as they are, and the camera's pinhole
    np.testing.assert_allclose(np.load(view / motion_masks.INTRINSICS_FILE), made.frame_intrinsics)
    shutil.rmtree(view)
    K = motion_masks.intrinsics(np.array([32.0, 48.0, 40.0]), 64, 96, pinhole=made.frame_intrinsics)
    np.testing.assert_allclose(K[:2], [[2 * made.focal, 0, 2 * 26.0], [0, 2 * made.focal, 2 * 16.0]])
    capsys.readouterr()
    assert main(["poses", "--out", str(cap)]) != 0
    assert "brings its own frames and cameras" in capsys.readouterr().err


@pytest.mark.slow  # 5 s: world-space rays for captures that are not forward-facing (the whole run's switch)
def test_an_iphone_capture_trains_and_scores_in_world_space(layouts, tmp_path):
    from mononerf.config import load_config
    from mononerf.eval import dycheck
    from mononerf.train.cli import main as train_main
    from mononerf.train.trainer import Trainer

    argv = _argv([layouts / "iphone"], tmp_path, ["train.N_static_iters=1", "train.N_iters=1", "model.use_ndc=false"])
    argv += ["--no_ndc"]
    trainer = Trainer(load_config(argv), progress=False)
    s = trainer.pipeline.renderer.settings
    assert not s.ndc and s.near == pytest.approx(0.9 * float(trainer.data.bds.min())) and s.far > s.near
    trainer.fit()
    assert train_main(argv + ["--eval_only", "--protocol", "dycheck"]) == 0
    (dump,) = (trainer.run_dir / "multiview").glob("step_*")
    res = json.loads((dump / dycheck.RESULTS_FILE).read_text())
    assert json.loads((dump / "dycheck" / "dump.json").read_text())["render"]["ndc"] is False
    assert len(res["scenes"]["iphone"]["views"]) == 16 and np.isfinite(res["mean"]["mpsnr"])


def test_a_distorted_capture_is_undistorted_onto_the_pinhole(layouts, tmp_path):
    """Distort the frames of a capture with known lens coefficients (radial k1, k2, k3 and tangential p1, p2 in the
    Nerfies JSON order) and state them in the cameras: the loader's undistortion gives the pinhole frames back,
    up to two bilinear interpolations; ignoring the coefficients does not."""
    src = tmp_path / "distorted"
    shutil.copytree(layouts / "nerfies", src)
    ref = read_scenes([layouts / "nerfies"], "auto")[0]
    radial, tangential = [-0.35, 0.08, 0.0], [0.01, -0.008]
    h, w = ref.height, ref.width
    f = ref.focal
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])  # pixel index k at coordinate k, as OpenCV's
    dist = np.array([radial[0], radial[1], tangential[0], tangential[1], radial[2]])
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    # each distorted pixel shows the pinhole pixel its ray goes through
    und = cv2.undistortPoints(np.stack([xs, ys], -1).reshape(-1, 1, 2), K, dist, P=K).reshape(h, w, 2)
    for path in sorted((src / "camera").glob("0_*.json")):
        cam = json.loads(path.read_text())
        cam["radial_distortion"], cam["tangential_distortion"] = radial, tangential
        path.write_text(json.dumps(cam))
        pin = iio.imread(src / "rgb" / "2x" / f"{path.stem}.png").astype(np.float32)
        distorted = cv2.remap(pin, und[..., 0].astype(np.float32), und[..., 1].astype(np.float32), cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        iio.imwrite(src / "rgb" / "2x" / f"{path.stem}.png", np.clip(np.round(distorted), 0, 255).astype(np.uint8))
    # a validation view with the same lens: undistorted onto its own pinhole (focal 0.9x, principal point kept)
    view = src / "camera" / "1_00002.json"
    cam = json.loads(view.read_text())
    cam["radial_distortion"], cam["tangential_distortion"] = radial, tangential
    view.write_text(json.dumps(cam))
    K1 = np.array([[0.9 * f, 0, w / 2], [0, 0.9 * f, h / 2], [0, 0, 1.0]])
    und1 = cv2.undistortPoints(np.stack([xs, ys], -1).reshape(-1, 1, 2), K1, dist, P=K1).reshape(h, w, 2)
    pin = iio.imread(src / "rgb" / "2x" / "1_00002.png").astype(np.float32)
    iio.imwrite(src / "rgb" / "2x" / "1_00002.png", np.clip(np.round(cv2.remap(
        pin, und1[..., 0].astype(np.float32), und1[..., 1].astype(np.float32), cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE)), 0, 255).astype(np.uint8))
    s = read_scenes([src], "nerfies")[0]
    assert s.resampled_frames == 8
    v = next(v for v in s.eval_views if v.name == "1_00002")
    v_ref = next(v for v in ref.eval_views if v.name == "1_00002")
    assert not v.camera.has_distortion and float(v.camera.fx[0]) == pytest.approx(0.9 * f)
    raw_v = iio.imread(src / "rgb" / "2x" / "1_00002.png").astype(np.float32)[4:-4, 4:-4] / 255
    err_v = np.abs(v.image[4:-4, 4:-4] - v_ref.image[4:-4, 4:-4]).mean()
    assert err_v < 0.03 and err_v < 0.5 * np.abs(raw_v - v_ref.image[4:-4, 4:-4]).mean()
    inner = (slice(None), slice(4, -4), slice(4, -4))
    back = np.abs(s.images[inner] - ref.images[inner]).mean()
    raw = np.stack([iio.imread(src / "rgb" / "2x" / f"0_{i:05d}.png") for i in range(8)]).astype(np.float32) / 255
    off = np.abs(raw[inner] - ref.images[inner]).mean()
    assert back < 0.03 and back < 0.5 * off  # measured: 0.017 (two interpolations) against 0.049 left distorted
    np.testing.assert_allclose(s.poses, ref.poses, atol=1e-6)


def test_validation_views_between_training_times_sit_between_their_frames(layouts, tmp_path):
    """HyperNeRF's interp captures: the training frames take every other time and the validation frames the times
    between. Doubling the training warp ids and giving camera 1's views the odd ones puts each half-way between
    two frames; a view after the last training time is left out."""
    from mononerf.data.capture import video_position

    assert video_position([0, 2, 4], 3) == 1.5 and video_position([0, 2, 4], 4) == 2.0
    assert video_position([0, 2, 4], 5) is None and video_position([2, 4], 1) is None
    src = tmp_path / "interp"
    shutil.copytree(layouts / "nerfies", src)
    meta = json.loads((src / "metadata.json").read_text())
    for name, m in meta.items():
        m["warp_id"] = 2 * m["warp_id"] + (1 if name.startswith("1_") else 0)
    (src / "metadata.json").write_text(json.dumps(meta))
    s = read_scenes([src], "nerfies")[0]
    ref = read_scenes([layouts / "nerfies"], "nerfies")[0]
    np.testing.assert_array_equal(s.images, ref.images)  # the same training video
    cam1 = [(v.name, v.frame) for v in s.eval_views if v.camera_id == 1]
    assert cam1 == [(f"1_{t:05d}", t + 0.5) for t in range(7)]  # 1_00007 (time 15) is after the last frame (14)
    assert [v.frame for v in s.eval_views if v.camera_id == 2] == [float(t) for t in range(8)]


def test_world_rays_auto_gives_a_scene_that_is_not_forward_facing_world_rays(layouts, tmp_path, monkeypatch):
    """run.world_rays = auto: an LLFF scene keeps NDC and an iPhone capture that is not forward-facing samples in world
    space, in one run: two groups, each with its own render settings, loss flags and feature space; both train and
    the iPhone one scores under dycheck, rendered in world space."""
    from mononerf.config import load_config
    from mononerf.data.scene import Scene
    from mononerf.eval import dycheck
    from mononerf.geometry.poses import view_spread
    from mononerf.train.cli import main as train_main
    from mononerf.train.trainer import Trainer

    # the real test of a scene's cameras: a forward-facing synthetic scene, a ring of cameras around a point
    assert view_spread(read_scenes([layouts / "llff"])[0].poses) < 15.0
    ring = np.stack([np.concatenate([np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]),
                                     np.zeros((3, 1))], 1) for a in np.linspace(0, np.pi, 7)])
    assert view_spread(ring) == pytest.approx(90.0)
    # the synthetic capture is forward-facing: say it is not, to train it the way a wide capture is trained
    monkeypatch.setattr(Scene, "forward_facing", property(lambda s: s.format != "iphone"))
    argv = _argv([layouts / "llff", layouts / "iphone"], tmp_path,
                 ["train.N_static_iters=1", "train.N_iters=1", "run.world_rays=auto"])
    trainer = Trainer(load_config(argv), progress=False)
    (ndc_part, world_part) = trainer.pipeline.groups
    assert ndc_part.data.names == ["llff"] and world_part.data.names == ["iphone"]
    s_ndc, s_world = ndc_part.renderer.settings, world_part.renderer.settings
    assert s_ndc.ndc and (s_ndc.near, s_ndc.far) == (0.0, 1.0)
    assert not s_world.ndc and s_world.near == pytest.approx(0.9 * float(world_part.data.bds.min()))
    assert [f.ndc for f in trainer.plan.flags] == [True, False]
    trainer.fit()
    assert [part.renderer.features.ndc for part in trainer.pipeline.groups] == [True, False]
    pts = torch.rand(1, 5, 3) * 0.5  # the model maps NDC samples to world before projecting, world samples not
    assert torch.equal(trainer.model._to_world(pts, world_part.renderer.features), pts)
    assert not torch.allclose(trainer.model._to_world(pts, ndc_part.renderer.features), pts)
    assert train_main(argv + ["--eval_only", "--protocol", "dycheck"]) == 0
    (dump,) = (trainer.run_dir / "multiview").glob("step_*")
    assert json.loads((dump / "dycheck" / "dump.json").read_text())["render"]["ndc"] == {"llff": True,
                                                                                      "iphone": False}
    res = json.loads((dump / dycheck.RESULTS_FILE).read_text())
    assert len(res["scenes"]["iphone"]["views"]) == 16 and np.isfinite(res["mean"]["mpsnr"])
