"""The experiment driver (``python -m mononerf.experiments``) on a tiny case: every experiment runs, the report
holds what the dumps score, a second run reuses the finished runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mononerf.data.synthetic import generate_scene
from mononerf.experiments.cli import experiments_main as ex_main

TINY = [
    "model.encoder.num_layers=[0, 1]", "model.mlp_dynamic.d_hidden=32", "model.mlp_static.d_hidden=32",
    "model.mlp_dynamic.n_blocks=2", "model.mlp_static.n_blocks=3", "info.N_rand=32", "info.chunk=2048",
    "train.N_samples=4", "train.i_img=0", "train.i_weights=0", "train.i_print=0", "train.i_log=0",
    "model.training_frames=3",  # unseen frames: the dynamic stage sees 3 of the 5 frames
    "train.N_static_iters=8", "train.N_iters=3",  # shorter than --quick's schedule (--set wins over it)
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp_scenes")
    for p in "abc":
        generate_scene(root / f"syn_{p}", preset=p, frames=5, size=(64, 48), seed=0)
    return root


@pytest.mark.slow  # 23 s: the whole driver (four experiments); its parts are tested on their own in the default tier
def test_experiment_driver_on_a_tiny_case(data, tmp_path, capsys):
    out, rep = tmp_path / "runs", tmp_path / "docs" / "results.md"
    argv = ["--quick", "--device", "cpu", "--data", str(data), "--out", str(out), "--report", str(rep),
            "--scenes", "syn_a,syn_b,syn_c", "--steps", "1,2", "--no-lpips", "--downscale", "1"]
    for item in TINY:
        argv += ["--set", item]
    assert ex_main(argv) == 0
    text = rep.read_text()
    saved = json.loads((out / "experiments.json").read_text())
    for heading in ("(a) One model", "(b) Unseen frames", "(c) Unseen scene", "(d) Edits"):
        assert heading in text, heading
    # (a) one row per training scene, the numbers as the evaluation of its dump gives them
    from mononerf.eval.evaluate import evaluate_run

    rows = saved["multiscene"]["rows"]
    assert [r["label"] for r in rows] == ["syn_a", "syn_b"]
    (again,) = evaluate_run(saved["multiscene"]["step_dir"], data, use_lpips=False, write=False, verbose=False)
    assert rows[0]["psnr"] == pytest.approx(again["scenes"]["syn_a"]["psnr"])
    assert f"| syn_a | 8 + 3 | {rows[0]['psnr']:.2f} |" in text
    # ... and under DynamicNeRF's protocol: camera 0 at every one of the 5 times, its own table
    dn = saved["multiscene"]["dynamicnerf"]
    (again_dn,) = evaluate_run(dn["step_dir"], data, use_lpips=False, write=False, verbose=False,
                               protocol="dynamicnerf")
    assert [(r["time"], r["pose"]) for r in again_dn["scenes"]["syn_b"]["frames"]] == [(t, 1) for t in range(1, 6)]
    assert dn["rows"][1]["psnr"] == pytest.approx(again_dn["scenes"]["syn_b"]["psnr"])
    assert "Protocol `dynamicnerf`" in text and f"| syn_b | 8 + 3 | {dn['rows'][1]['psnr']:.2f} |" in text
    # (b) the quick grid of 2 times: frame 0 seen, frame 4 held out (3 training frames)
    seen, held = saved["frames"]["rows"]
    assert seen["label"] == "seen (frames 0)" and held["label"] == "held out (frames 4)"
    frames = again_frames = evaluate_run(saved["frames"]["step_dir"], data, use_lpips=False, write=False,
                                         verbose=False)[0]["scenes"]["syn_b"]["frames"]
    import numpy as np

    assert held["psnr"] == pytest.approx(np.mean([f["psnr"] for f in again_frames if f["time"] == 5]))
    assert seen["psnr"] == pytest.approx(np.mean([f["psnr"] for f in frames if f["time"] == 1]))
    # (c) zero-shot, untrained, then adapted / scratch at each step count, the plot and the claims
    labels = [(r["label"].split(" ")[0], r["steps"]) for r in saved["scene"]["rows"]]
    assert labels == [("zero-shot", "0"), ("untrained", "0"), ("adapted", "1 + 1"), ("scratch", "1 + 1"),
                      ("adapted", "2 + 2"), ("scratch", "2 + 2")]
    assert "- 2 + 2 steps: adapted" in text and "- zero-shot" in text
    assert (rep.parent / "results" / "adaptation_vs_scratch.png").stat().st_size > 1000
    adapted = Path(saved["scene"]["step_dirs"]["adapted 2"]).parents[1]
    assert (adapted / "000001.tar").is_file() and "adapted" in adapted.name  # its own run, 2 + 2 steps
    # (d) four edits, each an mp4, and the strip
    assert len(saved["edits"]["rows"]) == 4 and all(Path(e["video"]).is_file() for e in saved["edits"]["rows"])
    for name in ("multiscene_grid.png", "unseen_frames_grid.png", "edits.png"):
        assert (rep.parent / "results" / name).is_file(), name
    assert "machine:" in text and "commit:" in text and "--quick" in text
    capsys.readouterr()
    # a second run reuses every finished run (no training), the report is written again
    assert ex_main(argv + ["--only", "multiscene,frames"]) == 0
    log = capsys.readouterr().out
    assert log.count("reusing the finished run") == 2 and "training" not in log.replace("reusing", "")


def test_experiment_driver_refuses_bad_input(tmp_path, capsys):
    assert ex_main(["--data", str(tmp_path), "--report", "none"]) == 2
    assert "scene missing" in capsys.readouterr().err
    assert ex_main(["--only", "nope"]) == 2
    assert ex_main(["--steps", "0,5"]) == 2
    assert ex_main(["--scenes", "a,b"]) == 2
