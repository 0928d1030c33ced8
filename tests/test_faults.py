"""Security and faults (issue 26): a config fetches nothing and writes nowhere outside its run folder; full disks,
early signals, foreign files and odd paths end in one line with nothing lost (docs/security.md)."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mononerf.config import load_config, main as config_main, parse_config_file
from mononerf.data.synthetic import generate_scene
from mononerf.errors import MonoNeRFError, SceneFormatError
from mononerf.pipeline import checkpoint as ckpt
from mononerf.train.interrupts import Interrupted
from tests.test_checkpoint import RUN_NAME, scenes  # noqa: F401  (scenes: the two tiny synthetic scenes, a fixture)
from tests.test_train import run, tiny_argv

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "mononerf_conf"
MULTISCENE = CONF / "exp" / "synthetic" / "multiscene.conf"


def _error_line(err: str) -> str:
    """The one ``error: …`` line of a command's stderr, and no traceback."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------------------------------------ 1. path traversal
@pytest.mark.parametrize("item", ['info.expname="/../../escape2"', 'info.expname="a/../../b"',
                                  'info.expname="..\\\\x"', 'train.fast_render_basename="../up"',
                                  'info.evaldir="../../out"', 'info.evaldir="/tmp/out"'])
def test_a_run_folder_name_cannot_leave_basedir(scenes, tmp_path, capsys, item):
    from mononerf.train.cli import main

    base = tmp_path / "a" / "b" / "logs"
    assert main(tiny_argv(scenes, base, extra=[item])) == 2
    line = _error_line(capsys.readouterr().err)
    assert item.split("=")[0] in line and ("basedir" in line or "inside the run folder" in line)
    assert not (tmp_path / "a").exists()  # nothing was made, inside basedir or out of it


def test_a_plain_run_folder_name_is_still_accepted():
    cfg = parse_config_file(str(MULTISCENE), ['info.expname="my run (v2) ü"', 'info.evaldir="multiview/x"'])
    from mononerf.pipeline.pipeline import run_folder

    assert run_folder(cfg).name == "1gpusmy run (v2) ü"


# ------------------------------------------------------------------------------------------------ 2. remote includes
class _Server:
    """An HTTP server on 127.0.0.1 that serves a conf (``info.N_rand = 99``) and counts the requests."""

    def __init__(self):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                body = b"info { N_rand = 99 }\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/x.conf"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    import urllib.request

    assert urllib.request.urlopen(s.url, timeout=5).read().strip() == b"info { N_rand = 99 }"  # it serves
    s.hits.clear()
    yield s
    s.close()


def _remote_lines(url: str) -> list[str]:
    return [f'include url("{url}")', f'include "{url}"', f'include required(url("{url}"))',
            f'info {{ include url("{url}") }}', f'include file("{url}")', 'include package("os:x.conf")']


def test_a_conf_file_fetches_nothing(server, tmp_path, capsys):
    for k, line in enumerate(_remote_lines(server.url)):
        conf = tmp_path / f"c{k}.conf"
        conf.write_text(f'include required("{MULTISCENE}")\n{line}\n')
        assert config_main(["-c", str(conf)]) == 2, line
        msg = _error_line(capsys.readouterr().err)
        assert str(conf.name) in msg and "refused" in msg, (line, msg)
    assert config_main(["-c", str(MULTISCENE), "--set", f'model.mlp_dynamic={{ include url("{server.url}") }}']) == 2
    assert "refused" in _error_line(capsys.readouterr().err)
    assert server.hits == []


def test_a_run_folders_config_fetches_and_includes_nothing(server, scenes, tmp_path, capsys):
    from mononerf.eval.cli import video_main

    cfg = load_config(tiny_argv(scenes, tmp_path))
    run_dir = tmp_path / RUN_NAME
    cfg.save(run_dir / "config.conf")
    (run_dir / "000001.tar").write_bytes(b"")  # (the config is read first)
    clean = (run_dir / "config.conf").read_text()
    (tmp_path / "other.conf").write_text("info { N_rand = 7 }\n")
    for line in [f'include url("{server.url}")', 'include "../other.conf"']:
        (run_dir / "config.conf").write_text(clean + line + "\n")
        assert video_main([str(run_dir), "--device", "cpu"]) == 2
        msg = _error_line(capsys.readouterr().err)
        assert "config.conf" in msg and "refused" in msg
    assert server.hits == []


def test_includes_outside_the_config_tree_say_where_they_point(tmp_path, capsys):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.conf").write_text("info { N_rand = 64 }\n")
    (tmp_path / "tree" / "exp" / "deeper").mkdir(parents=True)
    (tmp_path / "tree" / "base.conf").write_text(f'include required("{CONF / "default_mv.conf"}")\n')
    inside = tmp_path / "tree" / "exp" / "in.conf"
    inside.write_text('include required("../base.conf")\n')  # the folder above the conf's: in the tree
    assert parse_config_file(str(inside)) is not None
    assert "note:" not in capsys.readouterr().err
    outside = tmp_path / "tree" / "exp" / "deeper" / "out.conf"
    outside.write_text('include required("../../base.conf")\ninclude required("../../../elsewhere/x.conf")\n')
    assert parse_config_file(str(outside)).info.N_rand == 64
    err = capsys.readouterr().err
    assert err.count("note:") == 2 and "outside the config tree" in err
    assert str(tmp_path / "elsewhere" / "x.conf") in err


# ------------------------------------------------------------------------------------------------ 3, 4. foreign files
def test_a_foreign_file_under_a_checkpoint_name_is_kept(scenes, tmp_path, capsys):
    extra = ["train.N_static_iters=1", "train.N_iters=3", "train.i_weights=1"]
    run(tiny_argv(scenes, tmp_path, extra=extra))
    run_dir = tmp_path / RUN_NAME
    foreign = run_dir / "000003.tar"
    torch.save({"my": torch.arange(3)}, foreign)  # a user's own torch file
    original = foreign.read_bytes()
    capsys.readouterr()
    run(tiny_argv(scenes, tmp_path, extra=["train.N_static_iters=1", "train.N_iters=5", "train.i_weights=1"]))
    out = capsys.readouterr().out
    assert "skipping an unreadable checkpoint" in out and "moved it to 000003.tar.unreadable" in out
    assert (run_dir / "000003.tar.unreadable").read_bytes() == original
    assert ckpt.load(run_dir / "000003.tar")["global_step"] == 3  # the run's own step 3 beside it
    assert ckpt.latest_dynamic(run_dir).name == "000004.tar"


def test_only_this_programs_temporaries_are_cleaned_up(tmp_path):
    ours = [".000004.tar.tmp999999991", ".static_000002.tar.tmp999999992", ".Pretrained_S.tar.tmp999999993",
            f".{'0123456789abcdef' * 2}.pt.tmp999999994"]
    theirs = [".notes.tmp99999997", ".000004.tar.tmp", ".x000004.tar.tmp999999991", ".000004.tar.tmp99999999x",
              ".0123.pt.tmp999999994", "000004.tar.tmp999999991"]
    for name in ours + theirs:
        (tmp_path / name).write_bytes(b"x")
    removed = sorted(p.name for p in ckpt.remove_stale_temporaries(tmp_path))
    assert removed == sorted(ours)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(theirs)


def test_a_link_left_under_a_temporary_name_is_not_written_through(tmp_path):
    target = tmp_path / "precious"
    target.write_bytes(b"keep")
    (tmp_path / f".000001.tar.tmp{os.getpid()}").symlink_to(target)
    ckpt.save_atomic({"network_fn_d_state_dict": {"w": torch.ones(1)}}, tmp_path / "000001.tar")
    assert target.read_bytes() == b"keep" and ckpt.load(tmp_path / "000001.tar")["network_fn_d_state_dict"]


# ------------------------------------------------------------------------------------------------ 5. preprocessing
def test_a_refused_video_leaves_nothing_in_out(tmp_path, capsys):
    from mononerf.preprocess.cli import main as preprocess_main
    from mononerf.utils.video import write_video

    video = write_video(tmp_path / "one.mp4", [np.full((32, 48, 3), 128, np.uint8)])
    assert preprocess_main(["frames", str(video), "--out", str(tmp_path / "new")]) == 2
    assert "at least 2" in _error_line(capsys.readouterr().err)
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"
    (mine / "images").mkdir(parents=True)
    (mine / "images" / "000.png").write_bytes(b"a user's frame")
    assert preprocess_main(["frames", str(video), "--out", str(mine), "--force"]) == 2
    assert sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*")) == ["images", "images/000.png"]
    assert (mine / "images" / "000.png").read_bytes() == b"a user's frame"  # the earlier outputs as they were


def test_an_unreadable_frame_leaves_no_half_made_images_2(tmp_path):
    from mononerf.data.scene import make_downsampled_images

    (tmp_path / "images").mkdir()
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "images" / "000.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "images" / "001.png").write_bytes(b"not a png")
    with pytest.raises(SceneFormatError, match="001.png"):
        make_downsampled_images(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


# ------------------------------------------------------------------------------------------------ 6. full disk
def _dev_full(monkeypatch, names=lambda path: True):
    """``save_atomic``'s new files on /dev/full for the paths ``names`` selects: every write fails with ENOSPC from
    the kernel, as on a full file system."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    real = ckpt._FileWriter

    def create(path):
        if names(path):
            Path(path).touch()  # the temporary file a full disk leaves behind
            return open("/dev/full", "wb", buffering=0)
        return real(path)

    monkeypatch.setattr(ckpt, "_FileWriter", create)


def test_a_full_disk_keeps_the_previous_checkpoint_and_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "000002.tar"
    ckpt.save_atomic({"network_fn_d_state_dict": {"w": torch.ones(1)}}, target)
    _dev_full(monkeypatch)
    with pytest.raises(MonoNeRFError) as err:
        ckpt.save_atomic({"network_fn_d_state_dict": {"w": torch.zeros(1000)}}, target)
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path}: cannot write 000002.tar (No space left on device)") and "\n" not in msg
    assert "previous checkpoint is kept" in msg
    assert [p.name for p in tmp_path.iterdir()] == ["000002.tar"]
    assert torch.equal(ckpt.load(target)["network_fn_d_state_dict"]["w"], torch.ones(1))


def test_a_disk_that_fills_during_training_is_one_line(scenes, tmp_path, capsys, monkeypatch):
    from mononerf.train.cli import main

    _dev_full(monkeypatch, names=lambda path: Path(path).name.startswith(".000002.tar"))
    argv = tiny_argv(scenes, tmp_path, extra=["train.N_static_iters=1", "train.N_iters=4", "train.i_weights=1"])
    assert main(argv) == 2
    line = _error_line(capsys.readouterr().err)
    assert f"{tmp_path / RUN_NAME}: cannot write 000002.tar (No space left on device)" in line
    assert "previous checkpoints are kept" in line
    names = sorted(p.name for p in (tmp_path / RUN_NAME).iterdir() if p.suffix == ".tar" or ".tmp" in p.name)
    assert names == ["000001.tar", "Pretrained_S.tar"]  # the previous checkpoint, no partial file
    assert ckpt.load(tmp_path / RUN_NAME / "000001.tar")["global_step"] == 1


def test_a_full_disk_under_the_feature_cache_warns_and_trains_on(scenes, tmp_path, capsys, monkeypatch):
    _dev_full(monkeypatch, names=lambda path: Path(path).name.endswith(f".pt.tmp{os.getpid()}"))
    trainer, history = run(tiny_argv(scenes, tmp_path, extra=["train.N_static_iters=1", "train.N_iters=1"]))
    err = capsys.readouterr().err
    assert "warning: " in err and "No space left on device" in err and "without caching" in err
    assert len(history) == 2 and list((tmp_path / "feature_cache").iterdir()) == []


def _can_mount_tmpfs(path: Path) -> bool:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.mark.slow
def test_training_on_a_real_full_file_system(scenes, tmp_path):
    """A tmpfs with room for the first checkpoint but not the second (root only; skipped elsewhere)."""
    probe = tmp_path / "probe"
    if not _can_mount_tmpfs(probe):
        pytest.skip("cannot mount a tmpfs here (needs root on Linux); the /dev/full tests cover the writes")
    subprocess.run(["umount", str(probe)], check=True)
    # the size of one checkpoint and of everything else a run writes, measured on disk first
    argv = tiny_argv(scenes, tmp_path / "measure", extra=["train.N_static_iters=1", "train.N_iters=2",
                                                           "train.i_weights=1", "run.feature_cache=null"])
    run(argv)
    one = (tmp_path / "measure" / RUN_NAME / "000001.tar").stat().st_size
    rest = sum(p.stat().st_size for p in (tmp_path / "measure").rglob("*")
               if p.is_file() and not ckpt.DYNAMIC_CKPT.match(p.name))  # logs, tensorboard, Pretrained_S.tar
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    size_kb = (rest + one + one // 2) // 1024 + 64
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mnt)], check=True)
    try:
        proc = subprocess.run([sys.executable, str(ROOT / "train" / "train.py")]
                              + tiny_argv(scenes, mnt, extra=["train.N_static_iters=1", "train.N_iters=4",
                                                              "train.i_weights=1", "run.feature_cache=null"]),
                              capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert proc.returncode == 2, proc.stderr
        line = _error_line(proc.stderr)
        assert "No space left on device" in line and "previous checkpoints are kept" in line
        run_dir = mnt / RUN_NAME
        assert not [p for p in run_dir.iterdir() if ".tmp" in p.name]
        newest = ckpt.latest_dynamic(run_dir)
        assert newest is not None and ckpt.load(newest)["global_step"] >= 1
    finally:
        subprocess.run(["umount", str(mnt)])


# ------------------------------------------------------------------------------------------------ 7, 12. bad values
def test_zero_samples_is_refused_before_a_run_folder_exists(scenes, tmp_path, capsys):
    from mononerf.train.cli import main

    assert main(tiny_argv(scenes, tmp_path, extra=["train.N_samples=0"])) == 2
    assert "train.N_samples must be a finite number >= 1" in _error_line(capsys.readouterr().err)
    assert not (tmp_path / RUN_NAME).exists()


def test_a_broken_set_value_names_its_key(capsys):
    assert config_main(["-c", str(MULTISCENE), "--set", "info.N_rand=[1,"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "--set info.N_rand" in line and "cannot parse value '[1,'" in line


# ------------------------------------------------------------------------------------------------ 8, 9. signals
def _wait_for_handler(proc: subprocess.Popen, sig: int, timeout: float = 60) -> None:
    """Until ``proc`` catches ``sig`` (Linux: /proc/PID/status SigCgt)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except FileNotFoundError:
            return
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
        if caught >> (sig - 1) & 1:
            return
        time.sleep(0.002)
    raise AssertionError("the command installed no handler")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc/PID/status")
@pytest.mark.parametrize("background", [False, True])
def test_a_stop_during_start_up_ends_quietly(scenes, tmp_path, background):
    """SIGINT as soon as train.py installs its handlers (before torch is imported): exit 130, no traceback, nothing
    trained. In the background of a script SIGINT comes ignored; the run must still stop."""
    def ignore_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, str(ROOT / "train" / "train.py")]
                            + tiny_argv(scenes, tmp_path, extra=["train.N_static_iters=2", "train.N_iters=2"]),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ignore_sigint if background else None)
    _wait_for_handler(proc, signal.SIGTERM)  # SIGTERM is caught only by our handler; Python leaves it default
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "stopped while starting: nothing was trained" in err
    assert not list(tmp_path.rglob("*.tar"))


def test_a_stop_while_encoding_says_nothing_was_trained(scenes, tmp_path, capsys, monkeypatch):
    from mononerf.train.cli import main
    from mononerf.pipeline.pipeline import Pipeline

    def stop(self):
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(Pipeline, "encode", stop)
    assert main(tiny_argv(scenes, tmp_path)) == 128 + signal.SIGTERM
    out = capsys.readouterr().out
    assert "interrupted while encoding the frames" in out and "nothing was trained" in out
    assert "run the same command again" in out


# ------------------------------------------------------------------------------------------------ 10. disparity
@pytest.mark.parametrize("what", ["disp", "mask", "flow"])
def test_a_map_saved_transposed_is_refused(tmp_path, what):
    import cv2

    from mononerf.data.scene import load_scene

    scene = tmp_path / "s"
    generate_scene(scene, preset="a", frames=3, size=(48, 32), seed=0)
    load_scene(scene)  # as generated: loads
    if what == "disp":
        path = sorted((scene / "disp").glob("*.npy"))[1]
        np.save(path, np.load(path).T.copy())
    elif what == "mask":
        path = sorted((scene / "motion_masks").glob("*.png"))[1]
        cv2.imwrite(str(path), cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).T.copy())
    else:
        path = scene / "flow" / "000_fwd.npz"
        with np.load(path) as d:
            np.savez(path, flow=d["flow"].transpose(1, 0, 2), mask=d["mask"].T)
    with pytest.raises(SceneFormatError) as err:
        load_scene(scene)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "aspect ratios differ" in msg
    assert "is 24x16" in msg and "frames are 16x24" in msg


def test_a_map_at_another_resolution_of_the_same_aspect_still_loads(tmp_path):
    from mononerf.data.scene import load_scene

    scene = tmp_path / "s"
    generate_scene(scene, preset="a", frames=3, size=(48, 32), seed=0)
    for path in sorted((scene / "disp").glob("*.npy")):
        d = np.load(path)
        np.save(path, np.repeat(np.repeat(d, 3, 0), 3, 1)[:-1])  # 3x larger, one row short (rounding)
    assert load_scene(scene).disp.shape == (3, 16, 24)


# ------------------------------------------------------------------------------------------------ 11. odd paths
def test_odd_paths_round_trip_through_config_conf(tmp_path):
    odd = ["my scène ü 1", 'quo"te', "back\\slash", "tab\there", "日本語 ✓", "brace {x} $ {y}", "a#b // c"]
    cfg = parse_config_file(str(MULTISCENE), [
        f"info.dataset_file_lists={json.dumps(odd, ensure_ascii=False)}",
        f"info.basedir={json.dumps(str(tmp_path / 'my logs ü'), ensure_ascii=False)}"])
    cfg.save(tmp_path / "config.conf")
    back = parse_config_file(str(tmp_path / "config.conf"), includes=False)
    assert back.info.dataset_file_lists == odd and back.info.basedir == str(tmp_path / "my logs ü")
    assert back.flat() == cfg.flat()


def test_a_run_in_a_folder_with_spaces_and_accents_renders(tmp_path):
    from mononerf.pipeline.pipeline import Pipeline

    scenes = tmp_path / "my scène ü 1"
    for p in "ab":
        generate_scene(scenes / f"syn_{p}", preset=p, frames=3, size=(48, 32), seed=0)
    trainer, _ = run(tiny_argv(scenes, tmp_path / "runs ü", extra=["train.N_static_iters=1", "train.N_iters=1"]))
    pipeline, step = Pipeline.from_run(trainer.run_dir, device="cpu")
    assert step == 0 and [Path(p).parent for p in pipeline.cfg.info.dataset_file_lists] == [scenes, scenes]
