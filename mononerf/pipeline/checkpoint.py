"""Checkpoints: safe reads, atomic writes, the newest readable one, RNG states for exact resume (method.md §5.5).

Every file is read with ``torch.load(weights_only=True)``: a checkpoint holds tensors and plain containers only
(the RNG states are stored as tensors and numbers), so a crafted file cannot run code when it is loaded. Model
weights go through :func:`load_weights`, which accepts our checkpoints and the original MonoNeRF's (its names, its
aliased and unused tensors; :mod:`mononerf.pipeline.original_layout`) and checks every tensor by name and shape.

``python -m mononerf.pipeline.checkpoint export RUN_OR_TAR --to-original OUT.tar`` writes a checkpoint of ours in the
original's layout (``global_step``, ``network_fn_d_state_dict``, ``optimizer_state_dict``).
"""

from __future__ import annotations

import errno
import os
import pickle
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mononerf.errors import MonoNeRFError, os_error
from mononerf.models.weights import numpy_multiarray
from mononerf.pipeline import original_layout

DYNAMIC_CKPT = re.compile(r"^(\d{6})\.tar$")
STATIC_CKPT = re.compile(r"^static_(\d{6})\.tar$")
PRETRAINED_S = "Pretrained_S.tar"
# the temporary files of save_atomic (``.NAME.tmpPID``) for the names this program saves in a run folder or in the
# feature cache: checkpoints, Pretrained_S.tar and cached features (32 hex digits .pt); nothing else is ever removed
TMP_FILE = re.compile(r"^\.(\d{6}\.tar|static_\d{6}\.tar|Pretrained_S\.tar|[0-9a-f]{32}\.pt)\.tmp(\d+)$")
STATE_KEY = "network_fn_d_state_dict"
STATIC_PARTS = ("mlp_static", "encoder2d")  # what Pretrained_S.tar holds (method.md §5.3)


def _numpy_rng_globals() -> list:
    """What a NumPy RNG state pickles to (checkpoints written before the RNG states became tensors): array
    reconstruction and dtypes, which run no code of the file's choosing."""
    return [numpy_multiarray()._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def write_error(folder: Path, exc: OSError, what: str) -> MonoNeRFError:
    """One line for a failed write: the folder, what was written and the cause (read-only, disk full, ...)."""
    return os_error(exc, folder, what, kept="the previous checkpoint is kept")


class _FileWriter:
    """A new file, written through ``os.write`` until every byte is down: a full disk, a quota or an I/O error
    reaches ``torch.save`` as the ``OSError`` it is. (Given a path, or a plain unbuffered file whose short write on
    a nearly full disk it does not retry, ``torch.save`` says only "unexpected pos ...", a ``RuntimeError``.)"""

    def __init__(self, path: Path):
        # O_EXCL: never an existing file, nor a link someone left under the temporary name
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.error: OSError | None = None  # the first failed write (torch may report it as a RuntimeError)

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):
                written = os.write(self.fd, view[done:])
                if written == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                done += written
        except OSError as exc:
            self.error = self.error or exc
            raise
        return done

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "_FileWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def save_atomic(obj: dict, path: str | os.PathLike, kept: str = "the previous checkpoint is kept") -> Path:
    """``torch.save`` to a temporary file in the same folder, flushed to disk, then renamed: a crash, a full disk or
    a signal never leaves half a file, and the previous file of that name survives. The temporary file is removed on
    failure, and a failed write is one line naming the folder and the cause (``kept``: what a full disk leaves)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)  # left by an earlier process with this PID
        with _FileWriter(tmp) as fh:
            try:
                torch.save(obj, fh)
            except RuntimeError:
                if getattr(fh, "error", None) is not None:  # the zip writer's account of a failed write
                    raise fh.error from None
                raise
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise os_error(exc, path.parent, path.name, kept=kept) from None
    except RuntimeError as exc:  # torch's writer failed without an OSError from the file
        tmp.unlink(missing_ok=True)
        raise MonoNeRFError(f"{path.parent}: cannot write {path.name} ({' '.join(str(exc).split())[:200]}); "
                            f"{kept}") from None
    except BaseException:  # an interrupt in the middle of the write
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(obj: dict, path: Path, warn=print) -> Path:
    """Save a checkpoint of a run folder atomically (:func:`save_atomic`). A file of that name that is not a
    readable checkpoint (someone's own file, a damaged one: skipped when the run resumed) is first moved aside
    (:func:`set_aside`, said through ``warn``), never overwritten."""
    moved = set_aside(path)
    if moved is not None:
        warn(f"warning: {path.name} in {path.parent} is not a checkpoint this run can read; moved it to "
             f"{moved.name} before saving over its name")
    earlier = any(DYNAMIC_CKPT.match(p.name) or STATIC_CKPT.match(p.name) or p.name == PRETRAINED_S
                  for p in path.parent.iterdir()) if path.parent.is_dir() else False
    return save_atomic(obj, path, kept="the previous checkpoints are kept" if earlier
                       else "no checkpoint of this run was written yet")


def set_aside(path: str | os.PathLike) -> Path | None:
    """Before a checkpoint is saved as ``path``: if a file of that name is there and does not read as a checkpoint
    (someone else's file, a damaged one), rename it to ``NAME.unreadable`` (``NAME.unreadable-2``, ...) so that
    the save keeps it; returns the new name, or None when nothing was moved."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        load(path)
        return None
    except MonoNeRFError:
        pass
    target, k = path.with_name(path.name + ".unreadable"), 1
    while target.exists():
        k += 1
        target = path.with_name(f"{path.name}.unreadable-{k}")
    os.replace(path, target)
    return target


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of saves interrupted in earlier processes (``.NAME.tmpPID`` for the names this
    program saves, :data:`TMP_FILE`, whose PID is not running); returns what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        m = TMP_FILE.match(p.name)
        if m and p.is_file() and not p.is_symlink() and not _pid_alive(int(m.group(2))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load(path: str | os.PathLike) -> dict:
    """Read a checkpoint file (weights only: tensors and plain containers). One-line MonoNeRFError when it is
    missing, a folder, truncated, not a checkpoint, or holds objects a weights-only load refuses."""
    path = Path(path)
    if path.is_dir():
        raise MonoNeRFError(f"{path}: is a folder; give a checkpoint file (NNNNNN.tar)")
    if not path.is_file():
        raise MonoNeRFError(f"{path}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(_numpy_rng_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        what = found.group(1) if found else str(exc).strip().splitlines()[0]
        raise MonoNeRFError(f"{path}: refused: the file holds Python objects, not only tensors ({what}); "
                            "checkpoints are read with weights_only=True, so nothing in a file is run") from None
    except Exception as exc:  # a truncated or foreign file
        raise MonoNeRFError(f"{path}: unreadable checkpoint ({exc.__class__.__name__}: "
                            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no detail'})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get(STATE_KEY), dict):
        raise MonoNeRFError(f"{path}: not a MonoNeRF checkpoint (no {STATE_KEY})")
    return obj


@dataclass
class Loaded:
    """What :func:`load_weights` read: the checkpoint dict, its step, whether it is the original's layout, and the
    tensors the original stores that nothing reads (skipped)."""

    checkpoint: dict
    step: int
    original: bool = False
    unused: list[str] = field(default_factory=list)

    def note(self, path) -> str | None:
        """The one line to show about skipped tensors, or None."""
        if not self.unused:
            return None
        return (f"{path}: the original's checkpoint layout; {len(self.unused)} tensors it stores but never reads "
                f"are skipped: {', '.join(self.unused)}")


def load_weights(model: torch.nn.Module, path: str | os.PathLike, parts: tuple[str, ...] | None = None,
                 checkpoint: dict | None = None) -> Loaded:
    """Load a checkpoint's model weights into ``model``, every tensor checked by name and shape.

    Args:
        model: the model to fill.
        path: the file (ours or the original's).
        parts: only the model's tensors whose names contain one of these (``Pretrained_S.tar``: the static head
            and ResNet18), all of them by default.
        checkpoint: the file's content when already read.
    Raises:
        MonoNeRFError: one line naming the file and the first missing, unexpected or differently shaped tensor.
    """
    path = Path(path)
    ckpt = load(path) if checkpoint is None else checkpoint
    raw = ckpt[STATE_KEY]
    original = original_layout.is_original_layout(raw)
    state, unused = original_layout.to_ours(raw)
    if parts is not None:  # as the original: only the named parts are read from the file
        state = {k: v for k, v in state.items() if any(p in k for p in parts)}
        unused = [k for k in unused if any(p in k for p in parts)]
    own = model.state_dict()
    wanted = {k: v for k, v in own.items() if parts is None or any(p in k for p in parts)}
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise MonoNeRFError(f"{path}: {bad[0]} is not a tensor")
    for key, value in state.items():
        if key not in wanted:
            raise MonoNeRFError(f"{path}: {key} is not in this model (a checkpoint of another configuration? "
                                f"it holds {len(state)} tensors, the model {len(wanted)})")
        if tuple(value.shape) != tuple(wanted[key].shape):
            raise MonoNeRFError(f"{path}: {key} has shape {tuple(value.shape)} in the file but "
                                f"{tuple(wanted[key].shape)} in this model (a checkpoint of another configuration?)")
    missing = [k for k in wanted if k not in state]
    if missing:
        raise MonoNeRFError(f"{path}: {missing[0]} is missing ({len(missing)} of the model's tensors are; a "
                            "checkpoint of another configuration?)")
    model.load_state_dict(state, strict=parts is None)
    return Loaded(ckpt, int(ckpt.get("global_step", 0)), original, unused)


def _latest(run_dir: Path, pattern: re.Pattern) -> Path | None:
    found = _all(run_dir, pattern)
    return found[-1] if found else None


def _all(run_dir: Path, pattern: re.Pattern) -> list[Path]:
    if not run_dir.is_dir():
        return []
    found = []
    for p in run_dir.iterdir():
        m = pattern.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_dynamic(run_dir: str | os.PathLike) -> Path | None:
    """Newest ``NNNNNN.tar`` of the dynamic stage (the original's naming), or None."""
    return _latest(Path(run_dir), DYNAMIC_CKPT)


def newest_readable(run_dir: str | os.PathLike, static: bool = False) -> tuple[Path | None, dict | None, list[str]]:
    """The newest checkpoint of a stage that reads (dynamic ``NNNNNN.tar``, or ``static_NNNNNN.tar``): returns
    (path, its content, one warning per newer file that did not read). Unreadable files are kept, not deleted."""
    warnings = []
    for path in reversed(_all(Path(run_dir), STATIC_CKPT if static else DYNAMIC_CKPT)):
        try:
            return path, load(path), warnings
        except MonoNeRFError as exc:
            warnings.append(f"warning: skipping an unreadable checkpoint (kept as it is): {exc}")
    return None, None, warnings


# ---------------------------------------------------------------------------------------------------- RNG states
def _np_state(state: tuple) -> dict:
    name, keys, pos, has_gauss, gauss = state
    return {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _np_tuple(state) -> tuple:
    if isinstance(state, tuple):  # a checkpoint written before the states became tensors
        return state
    keys = state["keys"].numpy().astype(np.uint32)
    return state["name"], keys, state["pos"], state["has_gauss"], state["gauss"]


def rng_state(sampler: np.random.RandomState) -> dict:
    """Every random state a training step draws from: the ray sampler, torch (CPU and CUDA), numpy, random; as
    tensors and numbers (a weights-only load reads them)."""
    version, internal, gauss = random.getstate()
    state = {
        "sampler": _np_state(sampler.get_state()),
        "torch": torch.get_rng_state(),
        "numpy": _np_state(np.random.get_state()),
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, sampler: np.random.RandomState) -> None:
    sampler.set_state(_np_tuple(state["sampler"]))
    torch.set_rng_state(state["torch"])
    np.random.set_state(_np_tuple(state["numpy"]))
    py = state["python"]
    if isinstance(py, dict):
        py = (py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"])
    random.setstate(py)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> np.random.RandomState:
    """Seed python, numpy, torch (and CUDA); return the ray sampler's own RandomState (method.md §5.1 seeds)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return np.random.RandomState(seed)


# ---------------------------------------------------------------------------------------------------- export
def export_original(source: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the checkpoint ``source`` (a file, or a run folder: its newest ``NNNNNN.tar``) in the original's
    layout: ``{global_step, network_fn_d_state_dict, optimizer_state_dict}`` with its tensor names and aliases."""
    source = Path(source)
    if source.is_dir():
        path = latest_dynamic(source)
        if path is None:
            raise MonoNeRFError(f"{source}: no checkpoint NNNNNN.tar of the dynamic stage in this folder")
    else:
        path = source
    ckpt = load(path)
    state, _ = original_layout.to_ours(ckpt[STATE_KEY])
    obj = {"global_step": int(ckpt.get("global_step", 0)),
           STATE_KEY: original_layout.to_original(state),
           "optimizer_state_dict": ckpt.get("optimizer_state_dict", {})}
    return save_atomic(obj, out)


if __name__ == "__main__":  # python -m mononerf.pipeline.checkpoint: the command is in mononerf/pipeline/cli.py
    from mononerf.pipeline.cli import checkpoint_main

    sys.exit(checkpoint_main())
