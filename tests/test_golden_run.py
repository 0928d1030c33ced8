"""The same training and render as before the architecture changes of issue 17: a tiny run trained from scratch
(3 static + 3 dynamic steps, seed 42) and rendered at two camera/time pairs — by the trainer, and again by a
Pipeline that loads the run's checkpoint from its folder, to the bit — equals the references made by the code
at 006cddf (tests/data/golden_run*.npz, one per set of float kernels; add one: ``python -m tests.test_golden_run
OUT.npz`` with the code at the commit whose outputs are the reference). Equal to the bit on a machine recorded in a
reference (its CPU model and threads: the machine that made it, and those found to give it bit for bit, added by
``python -m tests.test_golden_run --same-as REF.npz``); elsewhere a tolerance absorbs another CPU's BLAS: six
training steps carry a different rounding into the pictures (4.2e-4 between the two references)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from mononerf.config import load_config
from mononerf.data.synthetic import generate_scene
from mononerf.geometry.poses import frame_time
from tests.test_train import tiny_argv

REFERENCES = sorted((Path(__file__).parent / "data").glob("golden_run*.npz"))
OTHER_CPU_TOLERANCE = 2e-3
VIEWS = ((0, 0), (2, 4))  # (training camera, frame)
MAPS = ("rgb_map_full", "depth_map_full", "dynamicness_map", "rgb_map_s", "rgb_map_d")


def train_and_render(root: Path) -> dict[str, np.ndarray]:
    from mononerf.train.trainer import Trainer

    for p in "ab":
        generate_scene(root / f"syn_{p}", preset=p, frames=5, size=(48, 32), seed=0)
    trainer = Trainer(load_config(tiny_argv(root, root / "runs", extra=[
        "train.N_static_iters=3", "train.N_iters=3", "run.feature_cache=null"])), progress=False)
    trainer.fit()
    trainer.model.eval()
    return render(trainer)


def render(run) -> dict[str, np.ndarray]:
    """The reference renders of a trained run (a Trainer, or a Pipeline loaded from its folder)."""
    d = run.data
    out = {}
    with torch.inference_mode():
        for view, frame in VIEWS:
            t = torch.full((d.num_scenes,), frame_time(frame, d.num_frames))
            r = run.renderer.render_views(d.poses[:, view, :, :4], t, d.camera, dynamic=True, chunk=4096)
            for k in MAPS:
                out[f"{k}_{view}_{frame}"] = r[k].numpy()
    return out


def machine() -> str:
    """What decides the float kernels: torch's CPU capability and thread count, and the CPU's model (BLAS libraries
    choose their kernels by it: two AVX512 machines round differently)."""
    info = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    amx = " amx" if "amx_tile" in info.get("flags", "").split() else ""
    model = f"family {info.get('cpu family', '?')} model {info.get('model', '?')}{amx}"
    return f"{torch.backends.cpu.get_cpu_capability()} x{torch.get_num_threads()} {model}"


def test_training_and_rendering_match_the_reference(tmp_path):
    refs = {}
    for path in REFERENCES:
        ref = dict(np.load(path))
        for name in np.atleast_1d(ref.pop("machine")):  # one machine, or every machine found to give it
            refs[str(name)] = ref
    assert refs, "no tests/data/golden_run*.npz"
    got = train_and_render(tmp_path)
    # the run's checkpoint loaded by a fresh pipeline (what render, eval, edit and the viewer do) renders the same
    from mononerf.pipeline.pipeline import Pipeline

    (run_dir,) = (tmp_path / "runs").iterdir()
    loaded, step = Pipeline.from_run(run_dir, "cpu")
    assert step == 2  # the last of the 3 dynamic steps (labels count from 0)
    again = render(loaded)
    assert all(np.array_equal(again[k], got[k]) for k in got)
    for ref in refs.values():
        assert sorted(got) == sorted(ref)
        assert all(ref[k].std() > 0.01 for k in ref)  # real pictures, not constants

    def worst(ref):
        return max(float(np.abs(got[k] - ref[k]).max()) for k in ref)

    here = machine()
    if here in refs:  # kernels known to give a reference: bit for bit
        assert worst(refs[here]) == 0.0, (worst(refs[here]), here)
    else:  # another CPU's BLAS rounds differently
        nearest = min(worst(ref) for ref in refs.values())
        assert nearest <= OTHER_CPU_TOLERANCE, (nearest, sorted(refs), here)


def main(argv: list[str]) -> int:
    """``OUT.npz``: write this machine's outputs as a new reference (run it with the reference commit's code);
    ``--same-as REF.npz``: train here and, only when the outputs equal REF's to the bit, record this machine in it."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        got = train_and_render(Path(tmp))
    here = machine()
    if argv[:1] != ["--same-as"]:
        np.savez_compressed(argv[0], machine=np.array([here]), **got)
        return 0
    ref = dict(np.load(argv[1]))
    machines = [str(m) for m in np.atleast_1d(ref.pop("machine"))]
    differ = sorted(k for k in ref if not np.array_equal(got.get(k), ref[k]))
    if sorted(got) != sorted(ref) or differ:
        print(f"{here}: not bit for bit equal to {argv[1]} ({len(differ)} maps differ); nothing written",
              file=sys.stderr)
        return 1
    if here not in machines:
        machines.append(here)
        np.savez_compressed(argv[1], machine=np.array(machines), **ref)
    print(f"{argv[1]}: bit for bit on {'; '.join(machines)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
