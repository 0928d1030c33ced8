#!/usr/bin/env bash
# The multi-scene experiment (Balloon1_Balloon2.sh) on synthetic scenes a + b with a short schedule.
# Usage: ./scripts/synthetic_multiscene.sh [extra train flags, e.g. --N_iters=50 --device=cpu]
set -euo pipefail
source "$(dirname "$0")/_env.sh"; ensure_venv core; cd "$ROOT"; source scripts/_synthetic.sh
ensure_scene a; ensure_scene b
exec "$PY" train/train.py -c mononerf_conf/exp/synthetic/multiscene.conf \
    --set "info.dataset_file_lists=[\"$DATA/synthetic_a\", \"$DATA/synthetic_b\"]" "$@"
