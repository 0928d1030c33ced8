"""The set-up scripts: scripts/_env.sh decides when to (re)install into .venv."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ensure(tmp_path: Path, extra: str) -> tuple[str, bool]:
    """Run ``ensure_venv EXTRA`` of a copy of scripts/_env.sh whose .venv python is a stub that records calls."""
    (tmp_path / "scripts").mkdir(exist_ok=True)
    shutil.copy(ROOT / "scripts" / "_env.sh", tmp_path / "scripts" / "_env.sh")
    shutil.copy(ROOT / "setup.py", tmp_path / "setup.py")
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True, exist_ok=True)
    calls = tmp_path / "calls"
    stub = venv_bin / "python"
    stub.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    stub.chmod(0o755)
    calls.unlink(missing_ok=True)
    out = subprocess.run(["bash", "-c", f"source {tmp_path}/scripts/_env.sh && ensure_venv {extra}"],
                         capture_output=True, text=True, check=True)
    return out.stdout + out.stderr, calls.exists()


def test_a_dev_install_satisfies_the_core_check(tmp_path):
    digest = hashlib.sha256((ROOT / "setup.py").read_bytes()).hexdigest()[:16]
    out, installed = _ensure(tmp_path, "core")  # no stamp: installs
    assert installed and "[setup] installing" in out
    (tmp_path / ".venv" / ".mononerf-core").unlink()
    (tmp_path / ".venv" / ".mononerf-dev").write_text(digest + "\n")  # what ./scripts/test.sh leaves
    out, installed = _ensure(tmp_path, "core")  # ./scripts/demo.sh after the tests: nothing to do (offline-safe)
    assert not installed and "[setup]" not in out
    out, installed = _ensure(tmp_path, "dev")
    assert not installed
    (tmp_path / ".venv" / ".mononerf-dev").unlink()
    (tmp_path / ".venv" / ".mononerf-core").write_text(digest + "\n")
    out, installed = _ensure(tmp_path, "dev")  # a core install lacks the dev extras: installs them
    assert installed and ".[dev]" in out
