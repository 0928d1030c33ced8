# Shared by scripts/synthetic_*.sh (sourced after _env.sh): make the synthetic scenes on first use.
DATA="${SYNTHETIC_DATA:-data}"
ensure_scene() {  # ensure_scene PRESET
    local dir="$DATA/synthetic_$1"
    if [ ! -f "$dir/synthetic.json" ]; then
        "$PY" -m mononerf.data.synthetic --out "$dir" --preset "$1" --seed 0
    fi
}
