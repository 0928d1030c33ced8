#!/usr/bin/env bash
# Multi-scene training on Balloon1 + Balloon2 (the original's launcher). Usage: ./Balloon1_Balloon2.sh GPU [extra flags]
# Scenes: BALLOON1 (default data/Balloon1), BALLOON2 (default data/Balloon2).
set -euo pipefail
source "$(dirname "$0")/scripts/_launch.sh"
GPU="${1:-0}"; shift || true
B1="${BALLOON1:-data/Balloon1}"; B2="${BALLOON2:-data/Balloon2}"
require_scene "$B1" BALLOON1; require_scene "$B2" BALLOON2; require_weights; use_gpu "$GPU"
exec "$PY" train/train.py \
    -c mononerf_conf/exp/Balloon1_Balloon2/dynamic_temporal_feat_static_mask_flow_loss_multiscenes_discrete2_addition.conf \
    --launcher=pytorch --set "info.dataset_file_lists=$(scene_list "$B1" "$B2")" "$@"
