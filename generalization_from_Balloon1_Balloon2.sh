#!/usr/bin/env bash
# Unseen-scene adaptation on Jumping from the multi-scene Balloon1_Balloon2 run (the original's launcher).
# Usage: ./generalization_from_Balloon1_Balloon2.sh GPU ITERS [extra flags]     (README example: ITERS=2000)
# Scene: JUMPING (default data/Jumping); checkpoint: FT_PATH (default logs/multiscenes/1gpusBalloon1_Balloon2/010000.tar).
set -euo pipefail
source "$(dirname "$0")/scripts/_launch.sh"
GPU="${1:-0}"; ITERS="${2:-}"
if [ -z "$ITERS" ]; then echo "usage: $0 GPU ITERS   (e.g. $0 0 2000)" >&2; exit 2; fi
shift 2
SCENE="${JUMPING:-data/Jumping}"
FT="${FT_PATH:-logs/multiscenes/1gpusBalloon1_Balloon2/010000.tar}"
require_scene "$SCENE" JUMPING; require_weights
if [ ! -f "$FT" ]; then
    echo "error: multi-scene checkpoint $FT not found: train ./Balloon1_Balloon2.sh first, or set FT_PATH=/path/NNNNNN.tar" >&2
    exit 2
fi
use_gpu "$GPU"
exec "$PY" train/train.py -c mononerf_conf/exp/generation_from_Balloon1_Balloon2/Jumping.conf --launcher=pytorch \
    --ft_path="$FT" --fast_render_iter="$ITERS" --set "info.dataset_file_lists=$(scene_list "$SCENE")" "$@"
