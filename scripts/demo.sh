#!/usr/bin/env bash
# The main job on synthetic data: generate the demo scenes a, b, c, check them with the training loader, train
# the multi-scene model on a and b for a short schedule (a few minutes on 2 CPU cores), then render a small novel
# view x time video of the trained run and print its evaluation table (a quick one: see docs/rendering.md).
# Environment: DEMO_DATA (default data/) — where the synthetic scenes go; DEMO_RUN — the run folder, when extra
# arguments change it; extra arguments go to train/train.py (e.g. ./scripts/demo.sh --N_iters=50).
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
RUN="${DEMO_RUN:-logs/synthetic/1gpussynthetic_a_synthetic_b}"  # {basedir}/{W}gpus{expname} of multiscene.conf
echo "[demo] rendering a novel view x time video (spiral cameras while time runs; 1/6 size, 8 samples per ray):"
"$PY" -m mononerf.render "$RUN" --mode spiral --repeat 1 --downscale 6 --n-samples 8 --outputs rgb,depth
echo "[demo] evaluating the run: 3 times x 3 cameras at 1/4 size against multiview_GT (a quick look; the"
echo "[demo] paper's protocol renders every camera at every time at the training size: --mode multiview, see docs)"
"$PY" -m mononerf.render "$RUN" --mode multiview --grid 3 --downscale 4 --n-samples 8 \
    --out "$RUN/multiview_demo/step_quick"
"$PY" -m mononerf.eval "$RUN/multiview_demo/step_quick" --data "$DATA" --picture "$RUN/multiview_demo/grid.png"
