#!/usr/bin/env bash
# The main job on synthetic data: generate the demo scenes a, b, c and load them through the trainer's loader.
# Environment: DEMO_DATA (default data/) — where the synthetic scenes go.
set -euo pipefail
source "$(dirname "$0")/_env.sh"
ensure_venv core
cd "$ROOT"
DATA="${DEMO_DATA:-data}"
for p in a b c; do
    if [ -f "$DATA/synthetic_$p/synthetic.json" ] && [ -d "$DATA/synthetic_$p/images_2" ]; then
        echo "[demo] $DATA/synthetic_$p exists, keeping it"
    else
        "$PY" -m mononerf.data.synthetic --out "$DATA/synthetic_$p" --preset "$p" --seed 0
    fi
done
echo "[demo] checking the scenes with the training loader:"
"$PY" -m mononerf.data "$DATA/synthetic_a" "$DATA/synthetic_b" "$DATA/synthetic_c" --rays 256
"$PY" - "$DATA" <<'PYEOF'
import sys
import numpy as np
from mononerf.data.dataset import MultiSceneDataset, split_frames
data = sys.argv[1]
ds = MultiSceneDataset.from_dirs([f"{data}/synthetic_a", f"{data}/synthetic_b"])
train, _ = split_frames(ds.num_frames)
batch = ds.sample_rays(np.random.RandomState(42), 256, train, stage="dynamic")
print(f"[demo] multi-scene batch {ds.names}: images {tuple(ds.images.shape)}, one step's rays "
      f"{tuple(batch.rays_o.shape)} from frames {batch.frame.tolist()} (times {[round(t, 3) for t in batch.time.tolist()]})")
PYEOF
echo "[demo] done. Training on these scenes comes with the training issue."
