#!/usr/bin/env bash
# Run the test suite (installs into .venv on first use). Extra arguments go to pytest, e.g.
#   ./scripts/test.sh -k config        ./scripts/test.sh -m slow        ./scripts/test.sh -m ""  (everything)
set -euo pipefail
source "$(dirname "$0")/_env.sh"
ensure_venv dev
cd "$ROOT"
exec "$PY" -m pytest "$@"
