#!/usr/bin/env bash
# Unseen frames on Balloon2 (the original's launcher). Usage: ./Balloon2_unseen_frames.sh GPU [extra flags]
# Scene: BALLOON2 (default data/Balloon2).
set -euo pipefail
source "$(dirname "$0")/scripts/_launch.sh"
GPU="${1:-0}"; shift || true
B2="${BALLOON2:-data/Balloon2}"
require_scene "$B2" BALLOON2; require_weights; use_gpu "$GPU"
exec "$PY" train/train.py -c mononerf_conf/exp/quarter_frame_training/Balloon2.conf --launcher=pytorch \
    --N_static_iters=100001 --set "info.dataset_file_lists=$(scene_list "$B2")" "$@"
