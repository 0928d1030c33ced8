"""Training-step benchmark: iterations/s, rays/s and peak memory of the static and dynamic steps.

    .venv/bin/python benchmarks/train_step.py [--rays-per-scene 256] [--samples 64] [--steps 3] [--profile]
        [--conf CONF] [--device auto|cpu|cuda] [--set key=value ...]

Default: the released multi-scene configuration (Balloon1_Balloon2, discrete2/addition) on the synthetic scenes
a and b (generated into benchmarks/out/ at 480x270 training size, like the real scenes, if missing), random encoder
weights. Prints one line per measurement; ``--profile`` adds the top operations of one dynamic step.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mononerf.config import load_config  # noqa: E402
from mononerf.data.synthetic import generate_scene  # noqa: E402
from mononerf.train.trainer import Trainer  # noqa: E402

EXP = "mononerf_conf/exp/Balloon1_Balloon2/dynamic_temporal_feat_static_mask_flow_loss_multiscenes_discrete2_addition.conf"


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conf", default=EXP)
    p.add_argument("--rays-per-scene", type=int, default=256)
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--size", default="960x540", help="synthetic full-resolution size (training size is half)")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--device", default="auto")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--set", action="append", default=[])
    a = p.parse_args()
    data = ROOT / "benchmarks" / "out" / f"scenes_{a.size}_{a.frames}"
    w, h = (int(v) for v in a.size.split("x"))
    for preset in "ab":
        if not (data / preset / "synthetic.json").is_file():
            generate_scene(data / preset, preset=preset, frames=a.frames, size=(w, h), seed=0)
    sets = [f"info.dataset_file_lists=[\"{data}/a\", \"{data}/b\"]", f"info.N_rand={2 * a.rays_per_scene}",
            f"train.N_samples={a.samples}", "model.encoder.pretrained=false", "model.encoder_2d.pretrained=false",
            f"info.basedir={ROOT}/benchmarks/out/logs/", "train.i_img=0", "train.i_weights=0", "train.i_print=0",
            "train.i_log=0", "train.i_testset=0", "train.i_video=0", "train.i_testset_all=0"] + a.set
    argv = ["-c", str(ROOT / a.conf), "--device", a.device, "--no_reload"]
    for s in sets:
        argv += ["--set", s]
    cfg = load_config(argv)
    tr = Trainer(cfg, progress=False)
    dev = tr.device
    print(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}), "
          f"threads {torch.get_num_threads()}, scenes {tr.data.num_scenes} x {tr.data.num_frames} frames "
          f"{tr.data.width}x{tr.data.height}, {a.rays_per_scene} rays/scene, {a.samples} samples")
    t0 = time.perf_counter()
    tr.encode()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    print(f"encode: {time.perf_counter() - t0:.2f} s, peak memory {peak_mb(dev):.0f} MiB")
    for stage in ("static", "dynamic"):
        opt = torch.optim.Adam(tr._stage_modules(stage), lr=5e-4)
        fn = tr.renderer
        tr._train_step(stage, 0, fn, opt)  # warm-up
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        t0 = time.perf_counter()
        for i in range(a.steps):
            tr._train_step(stage, i + 1, fn, opt)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        dt = (time.perf_counter() - t0) / a.steps
        rays = tr.data.num_scenes * tr.n_rand
        print(f"{stage} step: {dt:.3f} s/it ({1 / dt:.2f} it/s, {rays / dt:.0f} rays/s), "
              f"peak memory {peak_mb(dev):.0f} MiB")
    if a.profile:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        opt = torch.optim.Adam(tr._stage_modules("dynamic"), lr=5e-4)
        with profile(activities=acts) as prof:
            tr._train_step("dynamic", 99, tr.renderer, opt)
        key = "cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=15))


if __name__ == "__main__":
    main()
