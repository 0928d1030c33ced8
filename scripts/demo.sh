#!/usr/bin/env bash
# The main job on synthetic data: generate the demo scenes a, b, c, check them with the training loader, then train
# the multi-scene model on a and b for a short schedule (a few minutes on 2 CPU cores).
# Environment: DEMO_DATA (default data/) — where the synthetic scenes go; extra arguments go to train/train.py
# (e.g. ./scripts/demo.sh --N_iters=50).
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
"$PY" -m mononerf.data "$DATA/synthetic_a" "$DATA/synthetic_b" "$DATA/synthetic_c" --rays 64
echo "[demo] training the multi-scene model on synthetic_a + synthetic_b (static pretraining, then dynamic stage);"
echo "[demo] run the same command again to resume, or delete logs/synthetic/ to start over"
"$PY" train/train.py -c mononerf_conf/exp/synthetic/multiscene.conf \
    --set "info.dataset_file_lists=[\"$DATA/synthetic_a\", \"$DATA/synthetic_b\"]" "$@"
