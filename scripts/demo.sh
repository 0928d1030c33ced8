#!/usr/bin/env bash
# The main job on synthetic data: generate the demo scenes a, b, c, check them with the training loader, train
# the multi-scene model on a and b for a short schedule (900 static + 300 dynamic steps; tensorboard images off to
# save time), then render a 24-frame novel view x time video of scene a at the training size (160x90: spiral cameras
# while time runs forward and back), evaluate the run on 2 times x 2 cameras of its multi-view ground truth and write
# a comparison picture (under 10 min on 2 CPU cores, README; the full experiments: ./scripts/experiments.sh).
# run.flush_denormal=true: tiny gradients flushed to zero (not the original's IEEE arithmetic), without which the
# dynamic step slows from 0.6 s to 1.8 s over the 300 steps on a CPU (docs/training.md).
# Environment: DEMO_DATA (default data/) — where the synthetic scenes go; DEMO_RUN — the run folder, when extra
# arguments change it; extra arguments go to train/train.py (e.g. ./scripts/demo.sh --N_iters=300).
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
"$PY" train/train.py -c mononerf_conf/exp/synthetic/multiscene.conf --N_static_iters=900 --N_iters=300 --i_img=0 \
    --set run.flush_denormal=true --set "info.dataset_file_lists=[\"$DATA/synthetic_a\", \"$DATA/synthetic_b\"]" "$@"
RUN="${DEMO_RUN:-logs/synthetic/1gpussynthetic_a_synthetic_b}"  # {basedir}/{W}gpus{expname} of multiscene.conf
echo "[demo] a novel view x time video of synthetic_a at the training size (24 frames, spiral cameras while time"
echo "[demo] runs forward and back; 8 samples per ray) with its blending map (white = the dynamic branch):"
"$PY" -m mononerf.eval.video "$RUN" --mode spiral --scenes synthetic_a --frames 24 --n-samples 8 --outputs rgb,blend
echo "[demo] evaluating the run: times 0, 11 x cameras 0, 11 at half the training size (80x45), 8 samples per ray,"
echo "[demo] against multiview_GT (dPSNR etc.: the moving region; the full protocol: docs/rendering.md)"
"$PY" -m mononerf.eval.video "$RUN" --mode multiview --grid 2 --downscale 2 --n-samples 8 \
    --out "$RUN/multiview_demo/step_quick"
"$PY" -m mononerf.eval "$RUN/multiview_demo/step_quick" --data "$DATA" --picture "$RUN/multiview_demo/grid.png" \
    --views 1
