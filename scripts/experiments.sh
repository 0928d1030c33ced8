#!/usr/bin/env bash
# The paper's three claims on the synthetic scenes in one command: (a) multi-scene training on a + b, (b) unseen
# frames of b, (c) the unseen scene c zero-shot / adapted from (a) / from scratch at 50, 100 and 300 steps per stage,
# (d) the four edits of (a); every run scored on its multi-view ground truth, and docs/results.md written with the
# tables, a plot and pictures (~1 h on 2 CPU cores). Run ./scripts/test.sh (or ./scripts/demo.sh) first on a fresh
# clone. Options go to python -m mononerf.experiments: --quick (a smoke run with short schedules, report in
# logs/experiments_quick/), --device cuda, --steps 50,100,300, --grid K, --downscale F, --set KEY=VALUE,
# --scenes A,B[,…],UNSEEN (any number of training scenes, of any sizes and lengths), --protocol mononerf|dynamicnerf|both
# (the multi-scene table's; docs/evaluation.md), --help.
# Environment: SYNTHETIC_DATA (default data/) — where the synthetic scenes are (made here when missing).
set -euo pipefail
source "$(dirname "$0")/_env.sh"
ensure_venv core
cd "$ROOT"
source scripts/_synthetic.sh
for p in a b c; do ensure_scene "$p"; done
exec "$PY" -m mononerf.experiments --data "$DATA" "$@"
