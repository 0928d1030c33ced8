"""The same training and render as before the architecture changes of issue 17: a tiny run trained from scratch
(3 static + 3 dynamic steps, seed 42) and rendered at two camera/time pairs equals the reference saved by the code
at 006cddf (tests/data/golden_run.npz; regenerate: ``python tests/test_golden_run.py OUT.npz`` at the commit whose
outputs are the reference). Equal to the bit on a machine like the one that made it (same CPU capability and
threads, recorded in the file); elsewhere a tolerance absorbs another CPU's BLAS."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from mononerf.config import load_config
from mononerf.data.synthetic import generate_scene
from mononerf.geometry.poses import frame_time
from tests.test_train import tiny_argv

REFERENCE = Path(__file__).parent / "data" / "golden_run.npz"
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
    d = trainer.data
    out = {}
    with torch.inference_mode():
        for view, frame in VIEWS:
            t = torch.full((d.num_scenes,), frame_time(frame, d.num_frames))
            r = trainer.renderer.render_views(d.poses[:, view, :, :4], t, d.height, d.width, d.focals, dynamic=True,
                                              chunk=4096)
            for k in MAPS:
                out[f"{k}_{view}_{frame}"] = r[k].numpy()
    return out


def machine() -> str:
    """What decides the float kernels: torch's CPU capability and thread count."""
    return f"{torch.backends.cpu.get_cpu_capability()} x{torch.get_num_threads()}"


def test_training_and_rendering_match_the_reference(tmp_path):
    ref = dict(np.load(REFERENCE))
    recorded = str(ref.pop("machine"))
    got = train_and_render(tmp_path)
    assert sorted(got) == sorted(ref)
    worst = max(float(np.abs(got[k] - ref[k]).max()) for k in ref)
    if recorded == machine():  # the kernels the reference was made with: bit for bit
        assert worst == 0.0, worst
    else:  # another CPU's BLAS rounds differently
        assert worst <= 1e-5, (worst, recorded, machine())
    assert all(ref[k].std() > 0.01 for k in ref)  # real pictures, not constants


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        np.savez_compressed(sys.argv[1], machine=np.array(machine()), **train_and_render(Path(tmp)))
