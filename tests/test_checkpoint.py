"""Checkpoints (issue 16): weights-only loads, the original's layout in and out, runs that stop cleanly on a signal,
survive a corrupt or half-written checkpoint and resume bit for bit."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from mononerf.config import load_config
from mononerf.data.synthetic import generate_scene
from mononerf.errors import MonoNeRFError
from mononerf.pipeline import checkpoint as ckpt
from mononerf.pipeline.cli import checkpoint_main
from mononerf.pipeline import original_layout
from mononerf.train.interrupts import Interrupted
from mononerf.train.trainer import Trainer
from tests.test_train import losses, run, tiny_argv

ROOT = Path(__file__).resolve().parents[1]
KEY_LIST = json.loads((Path(__file__).parent / "data" / "original-checkpoint-keys.json").read_text())
RUN_NAME = "1gpussynthetic_a_synthetic_b"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    for p in "ab":
        generate_scene(root / f"syn_{p}", preset=p, frames=5, size=(48, 32), seed=0)
    return root


@pytest.fixture(scope="module")
def trained(scenes, tmp_path_factory):
    """A finished tiny run (1 static + 3 dynamic steps, checkpoints 000001.tar and 000002.tar)."""
    base = tmp_path_factory.mktemp("trained")
    trainer, _ = run(tiny_argv(scenes, base, extra=["train.N_static_iters=1", "train.N_iters=3", "train.i_weights=1"]))
    return trainer


class Evil:
    """A pickle that runs a shell command when unpickled by a full (not weights-only) load."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _one_error_line(err: str) -> str:
    """The one ``error: …`` line of a CLI's stderr (progress bars aside), and no traceback."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "it/s" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------------------------------------ security
def test_a_crafted_checkpoint_runs_nothing_at_any_entry_point(trained, scenes, tmp_path, capsys):
    from mononerf.edit.cli import main as edit_main
    from mononerf.eval.cli import video_main as render_main
    from mononerf.train.cli import main as train_main

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.tar"
    torch.save({"global_step": 1, "network_fn_d_state_dict": {}, "payload": Evil(marker)}, evil)
    with pytest.raises(MonoNeRFError, match="refused.*posix.system"):
        ckpt.load(evil)
    base = ["--set", "train.N_static_iters=0", "--set", "train.N_iters=1"]
    calls = [
        lambda: train_main(tiny_argv(scenes, tmp_path / "t1") + base + [f"--ft_path={evil}"]),
        lambda: train_main(tiny_argv(scenes, tmp_path / "t2") + base + ["--set", f"info.ft_path_S={evil}"]),
        lambda: render_main([str(trained.run_dir), "--checkpoint", str(evil), "--device", "cpu"]),
        lambda: edit_main([str(trained.run_dir), "remove-dynamic", "--scene", "0", "--checkpoint", str(evil),
                           "--device", "cpu"]),
    ]
    for call in calls:
        capsys.readouterr()
        assert call() != 0
        line = _one_error_line(capsys.readouterr().err)
        assert str(evil) in line and "refused" in line
        assert not marker.exists()


def test_old_checkpoints_with_numpy_rng_states_still_load(tmp_path):
    sampler = np.random.RandomState(3)
    old = {"global_step": 4, "network_fn_d_state_dict": {"w": torch.ones(2)},
           "rng": {"sampler": sampler.get_state(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                   "python": __import__("random").getstate()}}
    torch.save(old, tmp_path / "000004.tar")
    state = ckpt.load(tmp_path / "000004.tar")
    expected = sampler.rand(5)
    fresh = np.random.RandomState(0)
    ckpt.set_rng_state(state["rng"], fresh)
    assert np.array_equal(fresh.rand(5), expected)


def test_rng_states_are_tensors_and_round_trip(tmp_path):
    sampler = np.random.RandomState(7)
    sampler.rand(3)
    state = ckpt.rng_state(sampler)
    torch.save({"rng": state}, tmp_path / "r.tar")
    back = torch.load(tmp_path / "r.tar", weights_only=True)["rng"]  # no allow-list needed
    expected = (sampler.rand(4), np.random.rand(2), torch.rand(2), __import__("random").random())
    other = np.random.RandomState(0)
    ckpt.set_rng_state(back, other)
    got = (other.rand(4), np.random.rand(2), torch.rand(2), __import__("random").random())
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert torch.equal(got[2], expected[2]) and got[3] == expected[3]


# ------------------------------------------------------------------------------------------------ original layout
def _original_state_dict(seed: int = 0) -> dict:
    """Random tensors under every name of the original's key list; aliases are the same tensor objects."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for e in KEY_LIST["state_dict"]:
        if e["alias_of"]:
            state[e["key"]] = state[e["alias_of"]]
            continue
        dtype = getattr(torch, e["dtype"])
        state[e["key"]] = (torch.randn(e["shape"], generator=gen).to(dtype) if dtype.is_floating_point
                           else torch.randint(0, 9, e["shape"], generator=gen, dtype=dtype))
    return state


@pytest.fixture(scope="module")
def balloon_model():
    from mononerf.models.mononerf import MonoNeRF

    cfg = load_config(["-c", str(ROOT / KEY_LIST["config"]), "--set", "model.encoder.pretrained=false",
                       "--set", "model.encoder_2d.pretrained=false"])
    return MonoNeRF.from_conf(cfg)


def test_the_original_key_list_loads_checked_and_exports_back(balloon_model, tmp_path):
    orig = _original_state_dict()
    path = tmp_path / "010000.tar"
    torch.save({"global_step": 10000, "network_fn_d_state_dict": orig, "optimizer_state_dict": {}}, path)
    loaded = ckpt.load_weights(balloon_model, path)
    assert loaded.original and loaded.step == 10000
    unused = {e["key"] for e in KEY_LIST["state_dict"] if ".temporal_linear" in e["key"] and ".0." not in e["key"]}
    assert set(loaded.unused) == unused and len(unused) == 8
    assert all(k in loaded.note(path) for k in unused)
    mine = balloon_model.state_dict()
    for e in KEY_LIST["state_dict"]:  # every tensor the model has came from the file, under its renamed key
        key = e["alias_of"] or e["key"]
        if key in unused:
            continue
        ours = key.replace("mlp_static.", "mlp_static.view_head.", 1) if key.split(".")[1] in \
            original_layout.VIEW_HEAD else key
        assert torch.equal(mine[ours], orig[key]), key
    assert len(mine) == len(KEY_LIST["state_dict"]) - 8 - sum(1 for e in KEY_LIST["state_dict"] if e["alias_of"])

    # export: ours -> the original's layout, every name, shape, dtype; the aliases stored once
    own = tmp_path / "ours.tar"
    ckpt.save_atomic({"global_step": 7, "network_fn_d_state_dict": mine, "optimizer_state_dict": {"state": {}}}, own)
    out = tmp_path / "exported.tar"
    assert checkpoint_main(["export", str(own), "--to-original", str(out)]) == 0
    back = torch.load(out, weights_only=True)
    assert sorted(back) == sorted(KEY_LIST["checkpoint_layout"]["NNNNNN.tar"]) and back["global_step"] == 7
    sd = back["network_fn_d_state_dict"]
    assert set(sd) == {e["key"] for e in KEY_LIST["state_dict"]}
    for e in KEY_LIST["state_dict"]:
        t = sd[e["key"]]
        assert list(t.shape) == e["shape"] and str(t.dtype) == f"torch.{e['dtype']}", e["key"]
        if e["alias_of"]:
            assert t.untyped_storage().data_ptr() == sd[e["alias_of"]].untyped_storage().data_ptr(), e["key"]
        elif e["key"] not in unused:
            assert torch.equal(t, orig[e["key"]]), e["key"]
    # and it loads again
    assert ckpt.load_weights(balloon_model, out).original


def test_a_mismatching_checkpoint_names_the_key_and_both_shapes(balloon_model, trained, tmp_path):
    orig = _original_state_dict()
    orig["mlp_dynamic.lin_out.weight"] = torch.zeros(5, 256)
    torch.save({"global_step": 1, "network_fn_d_state_dict": orig}, tmp_path / "shape.tar")
    with pytest.raises(MonoNeRFError, match=r"shape\.tar: mlp_dynamic\.lin_out\.weight has shape \(5, 256\) in the "
                                            r"file but \(4, 256\) in this model"):
        ckpt.load_weights(balloon_model, tmp_path / "shape.tar")
    del orig["mlp_dynamic.lin_out.weight"]
    torch.save({"global_step": 1, "network_fn_d_state_dict": orig}, tmp_path / "missing.tar")
    with pytest.raises(MonoNeRFError, match=r"missing\.tar: mlp_dynamic\.lin_out\.weight is missing"):
        ckpt.load_weights(balloon_model, tmp_path / "missing.tar")
    # a checkpoint of another configuration: the first mismatching key, not a RuntimeError
    with pytest.raises(MonoNeRFError, match=r"000001\.tar: \S+ (has shape|is not in this model)"):
        ckpt.load_weights(balloon_model, trained.run_dir / "000001.tar")


def _export_original(trained, tmp_path) -> tuple[Path, dict]:
    out = tmp_path / "original.tar"
    assert checkpoint_main(["export", str(trained.run_dir), "--to-original", str(out)]) == 0
    return out, ckpt.load(trained.run_dir / "000002.tar")["network_fn_d_state_dict"]


def test_original_files_load_through_every_entry_point(trained, scenes, tmp_path, capsys):
    from mononerf.eval.video import load_run

    orig_path, ours = _export_original(trained, tmp_path)
    assert original_layout.is_original_layout(ckpt.load(orig_path)["network_fn_d_state_dict"])

    def same(model, keys=None):
        sd = model.state_dict()
        return all(torch.equal(sd[k], v) for k, v in ours.items() if keys is None or any(p in k for p in keys))

    # --checkpoint (render, edit, view)
    loaded, step = load_run(trained.run_dir, "cpu", str(orig_path))
    assert step == 2 and same(loaded.model)
    # --ft_path (adaptation)
    t = Trainer(load_config(tiny_argv(scenes, tmp_path / "ft", conf="multiscene", extra=[
        f"train.ft_path={orig_path}", "info.fast_render=true", "train.fast_render_iter=1"])), progress=False)
    t._resume_plan()
    assert same(t.model)
    # info.ft_path_S: the original's Pretrained_S.tar (its static head and ResNet18 only)
    full = ckpt.load(orig_path)["network_fn_d_state_dict"]
    static = {k: v for k, v in full.items() if any(p in k for p in ckpt.STATIC_PARTS)}
    assert "mlp_static.rgb_linear.weight" in static  # the original's names
    torch.save({"global_step": 0, "network_fn_d_state_dict": static}, tmp_path / "Pretrained_S.tar")
    t = Trainer(load_config(tiny_argv(scenes, tmp_path / "s", extra=[
        f"info.ft_path_S={tmp_path / 'Pretrained_S.tar'}"])), progress=False)
    plan = t._resume_plan()
    assert plan.stage == "dynamic" and same(t.model, ckpt.STATIC_PARTS)
    assert not same(t.model)  # the dynamic head stays as initialised


# ------------------------------------------------------------------------------------------------ never blocked
def _final_state(run_dir: Path) -> dict:
    return ckpt.load(ckpt.latest_dynamic(run_dir))


def _assert_same_checkpoint(a: dict, b: dict) -> None:
    assert a["global_step"] == b["global_step"]
    sa, sb = a["network_fn_d_state_dict"], b["network_fn_d_state_dict"]
    assert list(sa) == list(sb)
    differ = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert differ == [], differ[:5]  # every tensor, the encoders' BatchNorm buffers included
    oa, ob = a["optimizer_state_dict"], b["optimizer_state_dict"]
    assert oa["param_groups"] == ob["param_groups"]
    for k in oa["state"]:
        for name, v in oa["state"][k].items():
            assert torch.equal(v, ob["state"][k][name]), (k, name)


def test_sigterm_in_the_optimiser_step_saves_that_step_and_resumes_bit_for_bit(scenes, tmp_path, monkeypatch, capsys):
    extra = ["train.N_static_iters=2", "train.N_iters=6"]
    _, full = run(tiny_argv(scenes, tmp_path / "a", extra=extra))

    real_step = torch.optim.Adam.step
    calls = {"n": 0}

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2 + 4:  # dynamic step 3 (2 static steps before it): the signal lands inside the step
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    with pytest.raises(Interrupted) as stop:
        run(tiny_argv(scenes, tmp_path / "b", extra=extra))
    assert stop.value.signum == signal.SIGTERM
    run_dir = tmp_path / "b" / RUN_NAME
    assert ckpt.latest_dynamic(run_dir).name == "000003.tar"  # the step whose update had started: it completed
    out = capsys.readouterr().out
    assert "interrupted: saved" in out and "run the same command again" in out
    monkeypatch.setattr(torch.optim.Adam, "step", real_step)
    trainer, resumed = run(tiny_argv(scenes, tmp_path / "b", extra=extra))
    assert [i for s, i, _ in resumed] == [4, 5]
    assert losses(resumed, "dynamic") == {i: v for i, v in losses(full, "dynamic").items() if i >= 4}
    _assert_same_checkpoint(_final_state(tmp_path / "a" / RUN_NAME), _final_state(run_dir))
    # the resume is said on the console and in train.log
    out = capsys.readouterr().out
    assert f"resuming the dynamic stage from {run_dir / '000003.tar'} (step 3" in out
    assert "resuming the dynamic stage" in (run_dir / "train.log").read_text()


def test_sigint_stops_a_run_even_where_the_shell_ignores_it(scenes, tmp_path, capsys):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for `cmd &` in a script

    def cb(tr, stage, i, logs):
        if stage == "dynamic" and i == 1:
            os.kill(os.getpid(), signal.SIGINT)

    try:
        with pytest.raises(KeyboardInterrupt):
            run(tiny_argv(scenes, tmp_path, extra=["train.N_static_iters=1", "train.N_iters=5"]), [cb])
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # the trainer's handler is gone again
    finally:
        signal.signal(signal.SIGINT, previous)
    assert ckpt.latest_dynamic(tmp_path / RUN_NAME).name == "000001.tar"
    assert "run the same command again" in capsys.readouterr().out


def test_the_cli_exit_status_of_a_stop_request(monkeypatch, scenes, tmp_path, capsys):
    from mononerf.train import cli

    def stop(self):
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(Trainer, "fit", stop)
    assert cli.main(tiny_argv(scenes, tmp_path)) == 128 + signal.SIGTERM
    assert "stopped" in capsys.readouterr().err


def test_a_corrupt_newest_checkpoint_falls_back_to_the_newest_readable(trained, scenes, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / RUN_NAME
    shutil.copytree(trained.run_dir, run_dir)
    (run_dir / "000002.tar").write_bytes((run_dir / "000002.tar").read_bytes()[:1000])  # truncated
    torch.save({"network_fn_d_state_dict": {}, "x": Evil(tmp_path / "pwned")}, run_dir / "000003.tar")
    bad = {p: p.read_bytes() for p in (run_dir / "000002.tar", run_dir / "000003.tar")}
    t = Trainer(load_config(tiny_argv(scenes, tmp_path, extra=["train.N_static_iters=1", "train.N_iters=5",
                                                                "train.i_weights=1"])), progress=False)
    plan = t._resume_plan()
    out = capsys.readouterr().out
    assert plan.stage == "dynamic" and plan.start == 2  # from 000001.tar, the newest that reads
    assert "000003.tar" in out and "000002.tar" in out and out.count("skipping an unreadable checkpoint") == 2
    assert f"resuming the dynamic stage from {run_dir / '000001.tar'}" in out
    assert all(p.read_bytes() == b for p, b in bad.items())  # kept as they were
    assert not (tmp_path / "pwned").exists()


def test_interrupted_saves_leave_no_temporary_files_and_keep_the_previous_one(tmp_path, monkeypatch):
    target = tmp_path / "000002.tar"
    ckpt.save_atomic({"network_fn_d_state_dict": {"w": torch.ones(1)}}, target)
    real_save = torch.save

    def full_disk(obj, f, *a, **k):
        f.write(b"half")  # (save_atomic hands torch.save an open file)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(MonoNeRFError) as err:
        ckpt.save_atomic({"network_fn_d_state_dict": {"w": torch.zeros(1)}}, target)
    monkeypatch.setattr(torch, "save", real_save)
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path}: cannot write 000002.tar (No space left on device)") and "\n" not in msg
    assert [p.name for p in tmp_path.iterdir()] == ["000002.tar"]  # no .000002.tar.tmpPID left
    assert torch.equal(ckpt.load(target)["network_fn_d_state_dict"]["w"], torch.ones(1))  # the previous one

    # left by a killed process: removed at the start of the next run; one of a live process is left alone
    (tmp_path / ".000004.tar.tmp999999999").write_bytes(b"x")
    (tmp_path / f".000005.tar.tmp{os.getpid()}").write_bytes(b"x")
    assert [p.name for p in ckpt.remove_stale_temporaries(tmp_path)] == [".000004.tar.tmp999999999"]
    assert (tmp_path / f".000005.tar.tmp{os.getpid()}").exists()


def test_an_unwritable_run_folder_is_one_line(scenes, tmp_path, capsys, monkeypatch):
    from mononerf.train.cli import main

    (tmp_path / "runs").write_text("a file, not a folder")
    assert main(tiny_argv(scenes, tmp_path / "runs")) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(tmp_path / "runs") in line and "cannot write" in line

    def read_only(self, *a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert main(tiny_argv(scenes, tmp_path / "ro")) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "Read-only file system" in line and "info.basedir" in line


# ------------------------------------------------------------------------------------------------ visual outputs
def test_normalize_depth_is_the_originals():
    from mononerf.train.logger import normalize_depth, percentile

    depth = torch.arange(100, dtype=torch.float32).flip(0) + 5.0
    p = percentile(depth - 2.0, 97)
    assert float(p) == 99.0  # the 1 + round(0.97 * 99) = 97th smallest of 3..102, not interpolated
    got = normalize_depth(depth, near=2.0)
    assert torch.equal(got, ((depth - 2.0) / 99.0).clamp(0, 1))
    assert float(normalize_depth(torch.tensor([0.5, 0.6, 0.7]))[0]) == pytest.approx(0.5 / 0.7)  # near 0: no min


def test_a_file_where_a_folder_is_expected_and_back(trained, tmp_path, capsys):
    from mononerf.eval.cli import video_main as render_main

    tar = trained.run_dir / "000001.tar"
    assert render_main([str(tar), "--device", "cpu"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "is a file, not a run folder" in line and f"--checkpoint {tar}" in line
    assert render_main([str(trained.run_dir), "--checkpoint", str(tmp_path), "--device", "cpu"]) == 2
    assert "is a folder; give a checkpoint file" in _one_error_line(capsys.readouterr().err)


def test_a_run_stopped_between_the_stages_resumes_bit_for_bit(scenes, tmp_path):
    """Stopped after the last static step: the resumed run has no static step left to run, yet the static head's
    last gradients count in the dynamic stage's gradient clipping; the checkpoint brings them back."""
    extra = ["train.N_static_iters=3", "train.N_iters=3"]
    run(tiny_argv(scenes, tmp_path / "a", extra=extra))

    def cb(tr, stage, i, logs):
        if stage == "static" and i == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tiny_argv(scenes, tmp_path / "b", extra=extra), [cb])
    assert (tmp_path / "b" / RUN_NAME / "static_000002.tar").is_file()
    _, resumed = run(tiny_argv(scenes, tmp_path / "b", extra=extra))
    assert [s for s, _, _ in resumed] == ["dynamic"] * 3
    _assert_same_checkpoint(_final_state(tmp_path / "a" / RUN_NAME), _final_state(tmp_path / "b" / RUN_NAME))


def test_a_full_disk_during_training_is_one_line(scenes, tmp_path, capsys, monkeypatch):
    import imageio.v3 as iio

    from mononerf.train.cli import main

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(iio, "imwrite", full)  # the tensorboard picture of step 0
    assert main(tiny_argv(scenes, tmp_path, extra=["train.N_static_iters=1", "train.N_iters=1", "train.i_img=1"])) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "tboard_val_imgs" in line and "No space left on device" in line and "free some space" in line


def test_the_key_list_loads_through_every_entry_point(scenes, tmp_path, monkeypatch):
    """The original's own layout (all 578 names, aliases shared) in the configuration it was listed for, through
    --ft_path, info.ft_path_S and --checkpoint; every tensor arrives."""
    from mononerf.eval.video import load_run

    orig = _original_state_dict(seed=1)
    path = tmp_path / "010000.tar"
    torch.save({"global_step": 10000, "network_fn_d_state_dict": orig, "optimizer_state_dict": {}}, path)
    static = {k: v for k, v in orig.items() if any(p in k for p in ckpt.STATIC_PARTS)}
    torch.save({"global_step": 99, "network_fn_d_state_dict": static, "optimizer_state_dict": {}},
               tmp_path / "Pretrained_S.tar")
    lists = ", ".join(f'"{scenes}/syn_{n}"' for n in "ab")
    argv = ["-c", str(ROOT / KEY_LIST["config"]), "--device", "cpu", "--set", "model.encoder.pretrained=false",
            "--set", "model.encoder_2d.pretrained=false", "--set", f"info.dataset_file_lists=[{lists}]",
            "--set", f"info.basedir={tmp_path}/runs/"]

    def arrived(model, parts=None) -> bool:
        sd = model.state_dict()
        for e in KEY_LIST["state_dict"]:
            key = e["key"]
            if e["alias_of"] or original_layout.UNUSED.match(key) or (parts and not any(p in key for p in parts)):
                continue
            ours = original_layout.to_ours({key: orig[key]})[0]
            if not all(torch.equal(sd[k], v) for k, v in ours.items()):
                return False
        return True

    t = Trainer(load_config(argv + [f"--ft_path={path}"]), progress=False, run_logging=False)
    assert t._resume_plan().start == 10001 and arrived(t.model)
    t = Trainer(load_config(argv + ["--set", f"info.ft_path_S={tmp_path / 'Pretrained_S.tar'}"]), progress=False,
                run_logging=False)
    assert t._resume_plan().stage == "dynamic" and arrived(t.model, ckpt.STATIC_PARTS) and not arrived(t.model)
    t.cfg.save(tmp_path / "config.conf")
    monkeypatch.setattr(Trainer, "encode", lambda self: None)  # (the SlowOnly encode is not what is tested)
    loaded, step = load_run(tmp_path, "cpu", str(path))
    assert step == 10000 and arrived(loaded.model)


def test_stop_requests_are_held_back_in_a_critical_section_and_forgotten_while_saving():
    from mononerf.train.interrupts import StopRequests

    done = []
    with StopRequests() as stops:
        with pytest.raises(Interrupted) as stop:
            with stops.critical():
                os.kill(os.getpid(), signal.SIGTERM)
                done.append("the rest of the step ran")
        assert stop.value.signum == signal.SIGTERM and done
        with stops.ignored():
            os.kill(os.getpid(), signal.SIGINT)
        with stops.critical():
            pass  # nothing pending: the request during the save was forgotten
        with pytest.raises(Interrupted):
            os.kill(os.getpid(), signal.SIGINT)  # outside any section: at once


def test_eval_only_evaluates_the_newest_checkpoint_without_training(trained, scenes, tmp_path, capsys):
    import shutil

    from mononerf.train.cli import main

    shutil.copytree(trained.run_dir, tmp_path / RUN_NAME)
    before = sorted(p.name for p in (tmp_path / RUN_NAME).glob("*.tar"))
    argv = tiny_argv(scenes, tmp_path, extra=["train.N_static_iters=1", "train.N_iters=50"]) + ["--eval_only"]
    assert main(argv) == 0
    assert sorted(p.name for p in (tmp_path / RUN_NAME).glob("*.tar")) == before  # nothing trained or saved
    result = json.loads((tmp_path / RUN_NAME / "multiview" / "step_000002" / "results.json").read_text())
    assert set(result["scenes"]) == {"syn_a", "syn_b"} and result["mean"]["psnr"] > 0
    assert "[eval_only]" in capsys.readouterr().out
    # the literature's protocol: camera 0 at every time, its own results file
    shutil.rmtree(tmp_path / RUN_NAME / "multiview")
    assert main(argv + ["--protocol", "dynamicnerf"]) == 0
    step = tmp_path / RUN_NAME / "multiview" / "step_000002"
    dyn = json.loads((step / "results_dynamicnerf.json").read_text())
    assert dyn["protocol"]["name"] == "dynamicnerf" and not (step / "results.json").exists()
    assert {r["pose"] for r in dyn["scenes"]["syn_a"]["frames"]} == {1} and len(dyn["scenes"]["syn_a"]["frames"]) == 5
    assert sorted(p.name for p in (step / f"{1:08d}" / "imgs").iterdir()) == ["000_00.png", "000_01.png"]
