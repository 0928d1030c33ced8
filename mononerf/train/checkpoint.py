"""Checkpoints: atomic writes, discovery of the latest one, and every RNG state for exact resume (spec §5.5)."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from mononerf.errors import MonoNeRFError

DYNAMIC_CKPT = re.compile(r"^(\d{6})\.tar$")
STATIC_CKPT = re.compile(r"^static_(\d{6})\.tar$")
PRETRAINED_S = "Pretrained_S.tar"


def save_atomic(obj: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def load(path: str | os.PathLike) -> dict:
    """Load one of our checkpoints (they hold optimiser state and RNG states, so not ``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise MonoNeRFError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise MonoNeRFError(f"{path}: unreadable checkpoint ({exc.__class__.__name__}: {exc})") from None


def _latest(run_dir: Path, pattern: re.Pattern) -> Path | None:
    if not run_dir.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in run_dir.iterdir() if (m := pattern.match(p.name)))
    return found[-1][1] if found else None


def latest_dynamic(run_dir: str | os.PathLike) -> Path | None:
    """Newest ``NNNNNN.tar`` of the dynamic stage (the original's naming), or None."""
    return _latest(Path(run_dir), DYNAMIC_CKPT)


def latest_static(run_dir: str | os.PathLike) -> Path | None:
    """Newest ``static_NNNNNN.tar`` of an unfinished static pretraining, or None."""
    return _latest(Path(run_dir), STATIC_CKPT)


def rng_state(sampler: np.random.RandomState) -> dict:
    """Every random state a training step draws from: the ray sampler, torch (CPU and CUDA), numpy, random."""
    state = {
        "sampler": sampler.get_state(),
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, sampler: np.random.RandomState) -> None:
    sampler.set_state(state["sampler"])
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> np.random.RandomState:
    """Seed python, numpy, torch (and CUDA); return the ray sampler's own RandomState (spec §5.1 seeds)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return np.random.RandomState(seed)
