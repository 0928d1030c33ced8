"""Peak memory and step time against the number of scenes trained together (scenes of two sizes and lengths).

    python benchmarks/multiscene_memory.py [--counts 2,4,8] [--steps 4] [--samples 16] [--rays-per-scene 64]
        [--one-size]

Each count runs in a fresh process (peak resident memory is per process): N synthetic scenes, alternately
64x48 x 6 frames and 80x60 x 8 frames (training size), one model on ``mononerf_conf/exp/synthetic/multiscene.conf``
with random encoders, ``--steps`` static and ``--steps`` dynamic steps. Printed per count: the encoded features held
in memory (MB, every scene's SlowOnly + ResNet18 maps), the peak resident memory of the process (MB), the seconds
per dynamic step (the mean after the first) and the groups of one size and length. ``--one-size``: every scene
64x48 x 6 frames (one group, the original's stacked batch), to compare.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = ((128, 96, 6), (160, 120, 8))  # full-resolution W, H and frames; the training size is half


def _tensor_bytes(obj) -> int:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if hasattr(obj, "__dict__"):  # SceneFeatures, FeatureVolume (its levels and its cache of resized maps)
        return sum(_tensor_bytes(v) for v in vars(obj).values())
    return 0


def child(data: Path, count: int, steps: int, samples: int, rays: int) -> dict:
    """One measurement, in this process."""
    import resource

    sys.path.insert(0, str(ROOT))
    import mononerf  # noqa: F401
    from mononerf.config import load_config
    from mononerf.train.trainer import Trainer

    names = ", ".join(f'"{data}/s{i}"' for i in range(count))
    argv = ["-c", str(ROOT / "mononerf_conf/exp/synthetic/multiscene.conf"), "--device", "cpu"]
    for item in (f"info.basedir={data}/runs{count}/", f"info.dataset_file_lists=[{names}]",
                 f"info.N_rand={rays * count}", f"train.N_samples={samples}", f"train.batch_size={count}",
                 f"train.N_static_iters={steps}", f"train.N_iters={steps}", "train.i_img=0", "train.i_weights=0",
                 "run.feature_cache=null"):
        argv += ["--set", item]
    times: list[float] = []
    last = [time.perf_counter()]

    def tick(tr, stage, i, logs):
        now = time.perf_counter()
        if stage == "dynamic":
            times.append(now - last[0])
        last[0] = now

    trainer = Trainer(load_config(argv), progress=False, callbacks=[tick], run_logging=False)
    trainer.fit()
    feats = sum(_tensor_bytes(p.renderer.features) for p in trainer.pipeline.groups)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"scenes": count, "features_mb": feats / 2**20, "peak_rss_mb": peak_kb / 1024,
            "s_per_dynamic_step": sum(times[1:]) / max(1, len(times) - 1),
            "groups": [len(p.scene_ids) for p in trainer.pipeline.groups]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--counts", default="2,4,8")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--rays-per-scene", type=int, default=64)
    p.add_argument("--one-size", action="store_true", help="every scene of the first size (one group)")
    p.add_argument("--child", nargs=2, metavar=("DATA", "COUNT"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(Path(a.child[0]), int(a.child[1]), a.steps, a.samples, a.rays_per_scene)))
        return 0
    sys.path.insert(0, str(ROOT))
    from mononerf.data.synthetic import generate_scene

    counts = [int(c) for c in a.counts.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        for i in range(max(counts)):
            w, h, t = SIZES[0 if a.one_size else i % 2]
            generate_scene(data / f"s{i}", preset="abc"[i % 3], frames=t, size=(w, h), seed=i)
        print("| scenes | groups (scenes each) | features held (MB) | peak RSS (MB) | s / dynamic step |")
        print("|---|---|---|---|---|")
        for n in counts:
            out = subprocess.run([sys.executable, __file__, "--child", str(data), str(n), "--steps", str(a.steps),
                                  "--samples", str(a.samples), "--rays-per-scene", str(a.rays_per_scene)],
                                 capture_output=True, text=True, cwd=ROOT)
            if out.returncode != 0:
                print(out.stderr[-2000:], file=sys.stderr)
                return out.returncode
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {n} | {' + '.join(map(str, r['groups']))} | {r['features_mb']:.1f} | {r['peak_rss_mb']:.0f} "
                  f"| {r['s_per_dynamic_step']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
