"""Scenes of different sizes and lengths in one model, and the two evaluation protocols (docs/evaluation.md)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mononerf.config import load_config
from mononerf.data.dataset import SceneGroups, group_scenes
from mononerf.data.synthetic import generate_scene
from mononerf.errors import MonoNeRFError, SceneFormatError
from mononerf.eval.evaluate import evaluate_run
from mononerf.train.trainer import Trainer
from tests.test_train import TINY  # the tiny model and schedule of the training tests

ROOT = Path(__file__).resolve().parents[1]


def _argv(dirs: list[Path], basedir: Path, extra=()) -> list[str]:
    lists = ", ".join(f'"{d}"' for d in dirs)
    argv = ["-c", str(ROOT / "mononerf_conf/exp/synthetic/multiscene.conf"), "--device", "cpu",
            "--set", f"info.basedir={basedir}/", "--set", f"info.dataset_file_lists=[{lists}]"]
    for item in TINY + list(extra):
        argv += ["--set", item]
    return argv


# ------------------------------------------------------------------------------------------------ protocols


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    generate_scene(root / "s", frames=3, size=(128, 96))
    return root


def _dump(step: Path, data: Path, offsets: dict[int, int], protocol: str | None = None) -> dict:
    """A dump of scene 's': camera p at time t = the half-size GT + ``offsets[p]`` (clipped). Returns the expected
    PSNR of each (t, p), computed here with cv2.PSNR on the same arrays."""
    expected = {}
    for t in range(1, 4):
        (step / f"{t:08d}" / "imgs").mkdir(parents=True)
        for p, off in offsets.items():
            gt = cv2.imread(str(data / "s" / "multiview_GT" / f"{t:08d}" / f"cam{p:02d}.jpg"))
            gt = cv2.resize(gt, (gt.shape[1] // 2, gt.shape[0] // 2))
            pred = np.clip(gt.astype(np.int32) + off, 0, 255).astype(np.uint8)
            cv2.imwrite(str(step / f"{t:08d}" / "imgs" / f"{p - 1:03d}_00.png"), pred)
            expected[(t, p)] = cv2.PSNR(gt, pred)
    (step / "scenes.json").write_text(json.dumps({"00": "s"}))
    if protocol:
        (step / "dump.json").write_text(json.dumps({"protocol": protocol, "render": {"n_samples": 8}}))
    return expected


def test_protocols_score_their_views_of_a_known_dump(tmp_path, scene):
    step = tmp_path / "run" / "multiview" / "step_000001"
    expected = _dump(step, scene, {1: 3, 2: 20, 3: 40}, protocol="mononerf")
    (mono,) = evaluate_run(step, scene, use_lpips=False, verbose=False)
    (dyn,) = evaluate_run(step, scene, use_lpips=False, verbose=False, protocol="dynamicnerf")
    rows_m = mono["scenes"]["s"]["frames"]
    rows_d = dyn["scenes"]["s"]["frames"]
    # mononerf: every camera at every time; dynamicnerf: camera 1 (index 0) at every time
    assert sorted((r["time"], r["pose"]) for r in rows_m) == sorted(expected)
    assert [(r["time"], r["pose"]) for r in rows_d] == [(1, 1), (2, 1), (3, 1)]
    assert mono["mean"]["psnr"] == pytest.approx(np.mean(list(expected.values())), abs=1e-9)
    assert dyn["mean"]["psnr"] == pytest.approx(np.mean([expected[(t, 1)] for t in (1, 2, 3)]), abs=1e-9)
    assert dyn["mean"]["psnr"] > mono["mean"]["psnr"] + 5  # camera 0 is the least perturbed one here
    # each result names its protocol and the dump's render settings, in its own file
    assert mono["protocol"]["name"] == "mononerf" and dyn["protocol"]["name"] == "dynamicnerf"
    assert dyn["render"] == {"n_samples": 8}
    from mononerf.eval.evaluate import format_table

    head = format_table(dyn).splitlines()[0]
    assert "[protocol dynamicnerf]" in head and "(3 times x 1 cameras" in head and "8 samples per ray" in head
    saved = json.loads((step / "results_dynamicnerf.json").read_text())
    assert saved["mean"]["psnr"] == pytest.approx(dyn["mean"]["psnr"])
    assert json.loads((step / "results.json").read_text())["protocol"]["name"] == "mononerf"


def test_a_camera_0_dump_is_refused_under_the_every_camera_protocol(tmp_path, scene):
    step = tmp_path / "multiview" / "step_000001"
    _dump(step, scene, {1: 5}, protocol="dynamicnerf")
    (dyn,) = evaluate_run(step, scene, use_lpips=False, verbose=False, write=False, protocol="dynamicnerf")
    assert dyn["grid"] == [3, 1]
    with pytest.raises(SceneFormatError, match="rendered for the dynamicnerf protocol"):
        evaluate_run(step, scene, use_lpips=False, verbose=False, write=False)
    other = tmp_path / "other" / "step_000001"  # camera 0 missing: one line, not a wrong score
    _dump(other, scene, {2: 5, 3: 5})
    with pytest.raises(SceneFormatError, match="no render of camera 0"):
        evaluate_run(other, scene, use_lpips=False, verbose=False, write=False, protocol="dynamicnerf")
    with pytest.raises(MonoNeRFError, match="unknown protocol"):
        evaluate_run(other, scene, use_lpips=False, verbose=False, write=False, protocol="nsff")


# ------------------------------------------------------------------------------------------------ scene sizes


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> list[Path]:
    """Two small scenes of different sizes and lengths: 64x48 x 4 frames and 80x60 x 6 frames (training size)."""
    root = tmp_path_factory.mktemp("mixed")
    generate_scene(root / "small", preset="a", frames=4, size=(128, 96), seed=0)
    generate_scene(root / "large", preset="b", frames=6, size=(160, 120), seed=1)
    return [root / "small", root / "large"]


def test_mixed_scenes_train_in_groups_with_their_own_frames_and_times(tmp_path, mixed):
    batches = []
    cfg = load_config(_argv(mixed, tmp_path, ["train.N_static_iters=3", "train.N_iters=3"]))
    trainer = Trainer(cfg, progress=False, callbacks=[lambda tr, st, i, lg: batches.append(tr._last_batches)])
    assert isinstance(trainer.data, SceneGroups) and len(trainer.pipeline.groups) == 2
    with pytest.raises(MonoNeRFError, match="per group"):
        trainer.data.images  # noqa: B018  (the stacked tensors exist per group only)
    trainer.fit()
    assert len(batches) == 6
    for step in batches:
        for part, batch, T in zip(trainer.pipeline.groups, step, (4, 6)):
            assert part.data.num_frames == T and batch.rays_o.shape[0] == 1
            assert int(batch.frame.max()) < T
            # each scene's own time normalisation, t = i/T*2 - 1
            assert torch.allclose(batch.time, batch.frame.float() / T * 2 - 1)
    assert [p.data.height for p in trainer.pipeline.groups] == [48, 60]
    assert (trainer.run_dir / "000002.tar").is_file()


def test_mixed_scenes_render_and_evaluate_under_both_protocols(tmp_path, mixed):
    from mononerf.eval import renders
    from mononerf.eval.video import load_run, select_run_scenes

    cfg = load_config(_argv(mixed, tmp_path, ["train.N_static_iters=2", "train.N_iters=2"]))
    Trainer(cfg, progress=False).fit()
    pipeline, step = load_run(Trainer(cfg, progress=False, run_logging=False).run_dir, "cpu")
    with torch.inference_mode():
        full = renders.testset_all(pipeline, step, grid=2, folder=tmp_path / "mv", downscale=2)
        cam0 = renders.testset_all(pipeline, step, folder=tmp_path / "mv0", downscale=2, protocol="dynamicnerf")
    # file names by the run's scene index; each scene over its own frames and at its own size
    assert json.loads((full / "scenes.json").read_text()) == {"00": "small", "01": "large"}
    assert sorted(p.name for p in (cam0 / f"{6:08d}" / "imgs").iterdir()) == ["000_01.png"]
    assert sorted(p.name for p in (cam0 / f"{4:08d}" / "imgs").iterdir()) == ["000_00.png", "000_01.png"]
    assert cv2.imread(str(cam0 / f"{1:08d}" / "imgs" / "000_00.png")).shape[:2] == (24, 32)
    assert cv2.imread(str(cam0 / f"{1:08d}" / "imgs" / "000_01.png")).shape[:2] == (30, 40)
    assert json.loads((cam0 / "dump.json").read_text())["render"]["sizes"] == {"small": [32, 24],
                                                                                "large": [40, 30]}
    data = {d.name: d for d in mixed}
    (mono,) = evaluate_run(full, data, use_lpips=False, verbose=False)
    (dyn,) = evaluate_run(cam0, data, use_lpips=False, verbose=False, protocol="dynamicnerf")
    assert len(mono["scenes"]["small"]["frames"]) == 4 and len(mono["scenes"]["large"]["frames"]) == 4
    assert [r["time"] for r in dyn["scenes"]["large"]["frames"]] == [1, 2, 3, 4, 5, 6]
    assert [r["time"] for r in dyn["scenes"]["small"]["frames"]] == [1, 2, 3, 4]
    assert all(np.isfinite(s["psnr"]) for s in dyn["scenes"].values())
    from mononerf.eval.pictures import write_picture  # rows of both sizes in one picture

    pic = cv2.imread(str(write_picture(cam0, data, tmp_path / "grid.png", views=1)))
    assert pic is not None and pic.shape[0] > 2 * 30
    # a view of one scene of the run renders that scene alone, in its group
    one = select_run_scenes(pipeline, ["large"])
    assert one.data.num_frames == 6 and one.scene_ids == [0] and len(one.groups) == 1
    both = select_run_scenes(pipeline, ["large", "small"])
    assert both.data.names == ["large", "small"] and [p.scene_ids for p in both.groups] == [[1], [0]]


def test_edits_of_mixed_scenes_stay_in_a_group(tmp_path, mixed):
    from mononerf.edit.edits import EditSpec, in_group
    from mononerf.pipeline.pipeline import Pipeline

    pipeline = Pipeline(load_config(_argv(mixed, tmp_path)))
    part, spec = in_group(pipeline, EditSpec("retime", 1, 1, speed=0.5))
    assert part.data.names == ["large"] and (spec.static_scene, spec.dynamic_scene) == (0, 0)
    with pytest.raises(MonoNeRFError, match="differ in size or length"):
        in_group(pipeline, EditSpec("compose", 0, 1))
    # the viewer's scene: the run's index, rendered in its group at its own size and length
    from mononerf.view.render import SceneView

    pipeline.encode()
    view = SceneView(pipeline, 1)
    assert (view.run_scene, view.scene, view.name, view.num_frames) == (1, 0, "large", 6)
    assert view.ndc_hwf[:2] == (60.0, 80.0)
    assert SceneView(pipeline, 0).num_frames == 4


def test_group_scenes_keeps_the_listed_order():
    class S:
        def __init__(self, t, h, w):
            self.num_frames, self.height, self.width = t, h, w

    assert group_scenes([S(12, 90, 160), S(16, 108, 192), S(12, 90, 160)]) == [[0, 2], [1]]
    assert group_scenes([S(12, 90, 160)] * 3) == [[0, 1, 2]]


@pytest.mark.slow
def test_a_160x90x12_scene_and_a_192x108x16_scene_train_together(tmp_path):
    """The issue's case: the two sizes and lengths in one model, trained a few steps and rendered."""
    from mononerf.eval import renders
    from mononerf.eval.video import load_run

    generate_scene(tmp_path / "d" / "a12", preset="a", frames=12, size=(320, 180), seed=0)
    generate_scene(tmp_path / "d" / "b16", preset="b", frames=16, size=(384, 216), seed=0)
    dirs = [tmp_path / "d" / "a12", tmp_path / "d" / "b16"]
    cfg = load_config(_argv(dirs, tmp_path, ["train.N_static_iters=4", "train.N_iters=4"]))
    trainer = Trainer(cfg, progress=False)
    assert [(p.data.num_frames, p.data.width, p.data.height) for p in trainer.pipeline.groups] == [
        (12, 160, 90), (16, 192, 108)]
    trainer.fit()
    pipeline, step = load_run(trainer.run_dir, "cpu")
    with torch.inference_mode():
        dump = renders.testset_all(pipeline, step, grid=2, folder=tmp_path / "mv", downscale=4)
    (res,) = evaluate_run(dump, {d.name: d for d in dirs}, use_lpips=False, verbose=False)
    assert set(res["scenes"]) == {"a12", "b16"}
    assert {r["time"] for r in res["scenes"]["b16"]["frames"]} == {1, 16}
    assert {r["time"] for r in res["scenes"]["a12"]["frames"]} == {1, 12}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ddp_trains_scenes_of_two_sizes_with_identical_weights_on_both_ranks(tmp_path, mixed):
    """torchrun (gloo, 2 processes): every group but the last accumulates its gradients locally (no_sync), the last
    backward averages them all, so both ranks end with the same weights."""
    from tests.test_train import ddp_checksums

    found = ddp_checksums(_argv(mixed, tmp_path, ["train.N_static_iters=2", "train.N_iters=2"]), 29531)
    assert found["0"] == found["1"], found
