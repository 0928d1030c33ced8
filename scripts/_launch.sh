# Shared by the root launchers (sourced): pick the Python, the GPU, and check data and weights with clear messages.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="${PYTHON:-python3}"; fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

DATA_URL="https://filebox.ece.vt.edu/~chengao/free-view-video/data.zip"
SLOWONLY="slowonly_imagenet_pretrained_r50_8x8x1_150e_kinetics400_rgb_20200912-3f9ce182.pth"
SLOWONLY_URL="https://download.openmmlab.com/mmaction/recognition/slowonly/slowonly_imagenet_pretrained_r50_8x8x1_150e_kinetics400_rgb/$SLOWONLY"
RESNET18="resnet18-f37072fd.pth"
RESNET18_URL="https://download.pytorch.org/models/$RESNET18"

# use_gpu GPU_ID: run on that GPU when one exists, else say so and run on the CPU.
use_gpu() {
    local gpu="${1:-0}"
    if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        export CUDA_VISIBLE_DEVICES="$gpu"
        echo "[launch] GPU $gpu"
    else
        echo "[launch] notice: no CUDA GPU found; running on the CPU (the released configs are slow there)"
    fi
}

# require_scene DIR VAR: stop with a message when a scene folder is missing.
require_scene() {
    if [ ! -f "$1/poses_bounds.npy" ]; then
        echo "error: scene $1 not found (no $1/poses_bounds.npy)." >&2
        echo "  Download the Dynamic Scene Dataset ($DATA_URL) and unzip it into data/," >&2
        echo "  or point $2=/path/to/scene at it; for synthetic scenes use scripts/synthetic_*.sh." >&2
        exit 2
    fi
}

# require_weights: stop with a message when the encoder checkpoints are missing.
require_weights() {
    local missing=0
    [ -f "checkpoints/$SLOWONLY" ] || { echo "error: checkpoints/$SLOWONLY missing; get it from $SLOWONLY_URL" >&2; missing=1; }
    [ -f "checkpoints/$RESNET18" ] || [ -f "${TORCH_HOME:-$HOME/.cache/torch}/hub/checkpoints/$RESNET18" ] || \
        { echo "error: checkpoints/$RESNET18 missing; get it from $RESNET18_URL" >&2; missing=1; }
    if [ "$missing" = 1 ]; then
        echo "  (put the files in checkpoints/ by hand: nothing is downloaded at run time; see checkpoints/README.md)" >&2
        exit 2
    fi
}

# scene_list A B …: a HOCON list literal for --set info.dataset_file_lists=…
scene_list() {
    local out="" s
    for s in "$@"; do out="$out${out:+, }\"$s\""; done
    echo "[$out]"
}
