"""Shared set-up of the benchmark scripts: synthetic scenes at the real scenes' size and a trainer on them."""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import mononerf  # noqa: E402,F401  (before torch: the package sets the CPU allocator's huge-page option)
import torch  # noqa: E402

from mononerf.config import load_config  # noqa: E402
from mononerf.data.synthetic import generate_scene  # noqa: E402
from mononerf.train.trainer import Trainer  # noqa: E402

EXP = "mononerf_conf/exp/Balloon1_Balloon2/dynamic_temporal_feat_static_mask_flow_loss_multiscenes_discrete2_addition.conf"


def arguments(doc: str, rays_per_scene: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conf", default=EXP)
    p.add_argument("--rays-per-scene", type=int, default=rays_per_scene)
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--size", default="960x540", help="synthetic full-resolution size (training size is half)")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--device", default="auto")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--activation-checkpointing", action="store_true", help="run.activation_checkpointing = true")
    p.add_argument("--tf32", action="store_true", help="CUDA: TF32 matrix products and convolutions")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the heads, the trajectory and the feature-lookup-free parts of the field")
    p.add_argument("--autocast", action="store_true", help="bfloat16 autocast around the measured work")
    p.add_argument("--set", action="append", default=[])
    return p


def speed_context(a, device: torch.device):
    """``torch.autocast(bfloat16)`` with ``--autocast``, else nothing."""
    if a.autocast:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def apply_speed_options(tr: Trainer, a) -> str:
    """The GPU directions of issue #8 that are not config keys (yet): measured here before any becomes one."""
    notes = []
    if a.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        notes.append("tf32")
    if a.compile:
        import mononerf.models.trajectory as tj

        # the Euler integrators look these up when called
        tj._euler = torch.compile(tj._euler, dynamic=True)
        tj._euler_branch_mixup = torch.compile(tj._euler_branch_mixup, dynamic=True)
        tr.model.mlp_dynamic.compile(dynamic=True)
        tr.model.mlp_static.compile(dynamic=True)
        notes.append("torch.compile (heads, trajectory)")
    if a.autocast:
        notes.append("bf16 autocast")
    return ", ".join(notes) or "eager fp32"


def build_trainer(a) -> Trainer:
    """Two synthetic scenes (presets a, b) in benchmarks/out/, the given config, random encoder weights."""
    data = ROOT / "benchmarks" / "out" / f"scenes_{a.size}_{a.frames}"
    w, h = (int(v) for v in a.size.split("x"))
    for preset in "ab":
        if not (data / preset / "synthetic.json").is_file():
            generate_scene(data / preset, preset=preset, frames=a.frames, size=(w, h), seed=0)
    sets = [f"info.dataset_file_lists=[\"{data}/a\", \"{data}/b\"]", f"info.N_rand={2 * a.rays_per_scene}",
            f"train.N_samples={a.samples}", "model.encoder.pretrained=false", "model.encoder_2d.pretrained=false",
            f"info.basedir={ROOT}/benchmarks/out/logs/", "train.i_img=0", "train.i_weights=0", "train.i_print=0",
            "train.i_log=0", "train.i_testset=0", "train.i_video=0", "train.i_testset_all=0",
            "run.feature_cache=null",
            f"run.activation_checkpointing={'true' if a.activation_checkpointing else 'false'}"] + a.set  # measure the encode itself, not a cache load
    argv = ["-c", str(ROOT / a.conf), "--device", a.device, "--no_reload"]
    for s in sets:
        argv += ["--set", s]
    tr = Trainer(load_config(argv), progress=False)
    dev = tr.device
    mode = apply_speed_options(tr, a)
    thp = os.environ.get("THP_MEM_ALLOC_ENABLE", "0")
    print(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}), {mode}, "
          f"THP_MEM_ALLOC_ENABLE={thp}, "
          f"threads {torch.get_num_threads()}, scenes {tr.data.num_scenes} x {tr.data.num_frames} frames "
          f"{tr.data.width}x{tr.data.height}, {a.rays_per_scene} rays/scene, {a.samples} samples, "
          f"activation checkpointing {'on' if tr.renderer.settings.activation_checkpointing else 'off'}; {load_note()}",
          flush=True)
    return tr


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    """Start a new peak: the CUDA allocator's, or on Linux the process's peak resident set (``/proc/self/clear_refs``
    5 resets VmHWM to the current resident set, so a step's peak includes what is held: weights, features, Adam)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_mb(device: torch.device) -> float:
    """Peak memory since :func:`reset_peak`: CUDA allocator peak on a GPU; VmHWM (peak resident set) on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    hwm = _proc_status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # never reset


def rss_mb() -> float:
    """Current resident set of the process in MiB (Linux), 0 if unknown."""
    return _proc_status_mb("VmRSS") or 0.0


def _proc_status_mb(key: str) -> float | None:
    """A ``kB`` field of /proc/self/status in MiB, None where there is none (not Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def held_mb(obj) -> float:
    """MiB held by the tensors among ``obj``'s attributes (e.g. the encoded SceneFeatures)."""
    seen = {}
    for v in vars(obj).values():
        for t in getattr(v, "levels", [v]):  # a FeatureVolume holds its levels
            if torch.is_tensor(t):
                seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values()) / 2**20


def load_note() -> str:
    """The 1-minute load average: figures taken on a busy machine are flagged by it."""
    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    except OSError:
        return "load average unknown"


def profile_table(device: torch.device, fn, rows: int = 15) -> str:
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        fn()
    key = "cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)
