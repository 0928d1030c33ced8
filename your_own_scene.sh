#!/usr/bin/env bash
# Train on your own preprocessed video (the original's launcher). Usage: ./your_own_scene.sh GPU [extra flags]
# Scene: SCENE (default: the dataset_file_lists of mononerf_conf/exp/your_own_scene/your_own_scene.conf, data/your_own_data).
set -euo pipefail
source "$(dirname "$0")/scripts/_launch.sh"
GPU="${1:-0}"; shift || true
SCENE="${SCENE:-data/your_own_data}"
require_scene "$SCENE" SCENE; require_weights; use_gpu "$GPU"
exec "$PY" train/train.py -c mononerf_conf/exp/your_own_scene/your_own_scene.conf --launcher=pytorch \
    --set "info.dataset_file_lists=$(scene_list "$SCENE")" "$@"
