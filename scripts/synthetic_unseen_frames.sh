#!/usr/bin/env bash
# The unseen-frames experiment (Balloon2_unseen_frames.sh) on synthetic scene b with a short schedule.
# Usage: ./scripts/synthetic_unseen_frames.sh [extra train flags]
set -euo pipefail
source "$(dirname "$0")/_env.sh"; ensure_venv core; cd "$ROOT"; source scripts/_synthetic.sh
ensure_scene b
exec "$PY" train/train.py -c mononerf_conf/exp/synthetic/unseen_frames.conf \
    --set "info.dataset_file_lists=[\"$DATA/synthetic_b\"]" "$@"
