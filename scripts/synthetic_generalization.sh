#!/usr/bin/env bash
# The unseen-scene experiment (generalization_from_Balloon1_Balloon2.sh) on synthetic scene c, starting from the
# newest checkpoint of ./scripts/synthetic_multiscene.sh. Usage: ./scripts/synthetic_generalization.sh [ITERS] [flags]
set -euo pipefail
source "$(dirname "$0")/_env.sh"; ensure_venv core; cd "$ROOT"; source scripts/_synthetic.sh
ITERS="${1:-50}"; shift || true
FT="${FT_PATH:-$(ls logs/synthetic/1gpussynthetic_a_synthetic_b/[0-9]*.tar 2>/dev/null | sort | tail -n 1)}"
if [ -z "$FT" ] || [ ! -f "$FT" ]; then
    echo "error: no multi-scene checkpoint found: run ./scripts/synthetic_multiscene.sh first, or set FT_PATH" >&2
    exit 2
fi
ensure_scene c
exec "$PY" train/train.py -c mononerf_conf/exp/synthetic/adaptation.conf --ft_path="$FT" --fast_render_iter="$ITERS" \
    --set "info.dataset_file_lists=[\"$DATA/synthetic_c\"]" "$@"
