# Shared set-up for scripts/*.sh: create .venv and install the project into it, skipping when nothing changed.
# Usage (sourced): ensure_venv core|dev
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

_pick_python() {
    for c in python3.11 python3.12 python3.10 python3; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)'; then
            echo "$c"; return 0
        fi
    done
    echo "error: MonoNeRF needs Python 3.10-3.12 (python3.11 recommended); none found on PATH" >&2
    return 1
}

ensure_venv() {
    local extra="$1"   # core | dev
    local spec="." ; [ "$extra" = dev ] && spec=".[dev]"
    local stamp="$VENV/.mononerf-$extra"
    local want
    want="$(cat "$ROOT/setup.py" | sha256sum | cut -c1-16)"
    # a dev install holds everything a core one does, so its stamp satisfies a core check too
    local ok
    for ok in "$stamp" $([ "$extra" = core ] && echo "$VENV/.mononerf-dev"); do
        if [ -x "$PY" ] && [ -f "$ok" ] && [ "$(cat "$ok")" = "$want" ]; then
            return 0
        fi
    done
    if [ ! -x "$PY" ]; then
        local base; base="$(_pick_python)"
        echo "[setup] creating $VENV with $base"
        "$base" -m venv "$VENV"
    fi
    echo "[setup] installing MonoNeRF ($spec) into .venv — first time takes a few minutes"
    "$PY" -m pip install -q --upgrade pip
    # torch first: pip takes the pinned build from local disk where it lies there.
    "$PY" -m pip install -q torch==2.14.1 torchvision==0.29.1
    "$PY" -m pip install -q -e "$ROOT/$spec"
    echo "$want" > "$stamp"
}
