#!/usr/bin/env bash
# The GPU figures of issue #8 in one call, for a session lent a GPU machine (the `device` tool): first the CUDA tests
# and the device-placement check (tests/test_device_placement.py; a failure there explains a failure below), then the
# dynamic step at the original's 512 rays per scene (eager fp32, TF32, TF32 + torch.compile, bf16 autocast), 1024 rays
# per scene, and full 270x480 frames (fp32, TF32, bf16 autocast). Prepared on the CPU machine (each option runs
# there); not yet run on a GPU (benchmarks/README.md).
#   PY=python ./benchmarks/gpu.sh 2>&1 | tee gpu.txt
# On this workplace's lent machine (its python3 holds torch and most packages, not pyhocon/configargparse/lpips):
#   here:  echo /.whl/ >> .git/info/exclude; python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#          --implementation cp --platform manylinux_2_17_x86_64 -d .whl pyhocon==0.3.61 configargparse==1.9.0 lpips==0.1.4
#   there (device tool, carry [".whl"]): python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
#          && PYTHONPATH=/tmp/site:$PWD PY=python3 ./benchmarks/gpu.sh 2>&1 | tee $OUT/gpu.txt
set -u
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
B=benchmarks
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$PY" -m pytest -q -p no:cacheprovider tests/test_device_placement.py
"$PY" -m pytest -q -m gpu -p no:cacheprovider tests
"$PY" $B/train_step.py --device cuda --rays-per-scene 512 --steps 10 --stages static,dynamic
"$PY" $B/train_step.py --device cuda --rays-per-scene 512 --steps 10 --stages dynamic --tf32
"$PY" $B/train_step.py --device cuda --rays-per-scene 512 --steps 10 --stages dynamic --tf32 --compile
"$PY" $B/train_step.py --device cuda --rays-per-scene 1024 --steps 3 --stages dynamic
"$PY" $B/render_frame.py --device cuda --full
"$PY" $B/render_frame.py --device cuda --full --tf32
"$PY" $B/train_step.py --device cuda --rays-per-scene 512 --steps 10 --stages dynamic --autocast
"$PY" $B/render_frame.py --device cuda --full --autocast
