#!/usr/bin/env bash
# Train on your own preprocessed video (the original's launcher). Usage: ./your_own_scene.sh GPU [extra flags]
# Scene: SCENE (default: the dataset_file_lists of mononerf_conf/exp/your_own_scene/your_own_scene.conf, data/your_own_data).
# Make the scene from a video first: python -m mononerf.preprocess VIDEO --out data/your_own_data (docs/preprocess.md).
set -euo pipefail
source "$(dirname "$0")/scripts/_launch.sh"
GPU="${1:-0}"; shift || true
SCENE="${SCENE:-data/your_own_data}"
if [ ! -f "$SCENE/poses_bounds.npy" ]; then
    echo "error: scene $SCENE not found (no $SCENE/poses_bounds.npy)." >&2
    echo "  Make it from your video: $PY -m mononerf.preprocess /path/to/video.mp4 --out $SCENE" >&2
    echo "  (steps, weight files and timings: docs/preprocess.md), or point SCENE=/path/to/scene at a scene." >&2
    exit 2
fi
require_weights; use_gpu "$GPU"
exec "$PY" train/train.py -c mononerf_conf/exp/your_own_scene/your_own_scene.conf --launcher=pytorch \
    --set "info.dataset_file_lists=$(scene_list "$SCENE")" "$@"
