"""Locating and loading pretrained weight files (never downloaded at run time).

Weight files are put in place by hand (see ``checkpoints/README.md``). This module finds them, reads
them with ``torch.load(..., weights_only=True)`` and loads them into modules with strict key/shape
matching, raising user-facing errors that name the file, the folder and the download address
(docs/decisions.md "Weights are never downloaded at run time"; method.md §2.1, §2.2, §8 items 21 and 27).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch
from torch import nn

from mononerf.errors import MissingWeightsError, MonoNeRFError

SLOWONLY_R50_FILE = "slowonly_imagenet_pretrained_r50_8x8x1_150e_kinetics400_rgb_20200912-3f9ce182.pth"
RESNET18_FILE = "resnet18-f37072fd.pth"
#: torchvision's ImageNet (IMAGENET1K_V1) weight file of each 2D backbone (mononerf/models/spatial_encoder.py).
RESNET_FILES = {"resnet18": RESNET18_FILE, "resnet34": "resnet34-b627a593.pth", "resnet50": "resnet50-0676ba61.pth",
                "resnet101": "resnet101-63fe2227.pth", "resnet152": "resnet152-394f9c45.pth"}

#: Where each known weight file is downloaded from (shown in MissingWeightsError messages).
KNOWN_WEIGHT_URLS: dict[str, str] = {
    SLOWONLY_R50_FILE: (
        "https://download.openmmlab.com/mmaction/recognition/slowonly/"
        "slowonly_imagenet_pretrained_r50_8x8x1_150e_kinetics400_rgb/" + SLOWONLY_R50_FILE
    ),
    **{f: "https://download.pytorch.org/models/" + f for f in RESNET_FILES.values()},
}

_MAX_LISTED = 5  # offending keys named in an error message


def repo_checkpoint_dir() -> Path:
    """``checkpoints/`` at the root of the source tree this package lives in."""
    return Path(__file__).resolve().parents[2] / "checkpoints"


def torch_hub_checkpoint_dir() -> Path:
    """Where torchvision keeps downloaded weights: ``$TORCH_HOME/hub/checkpoints`` (``torch.hub.get_dir()``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def default_checkpoint_dirs(*, include_torch_hub: bool = False) -> list[Path]:
    """The folders searched for weight files, in order, without duplicates.

    ``./checkpoints`` (relative to the working directory, as the original's paths are), then the
    source tree's ``checkpoints/``, then (if asked) torchvision's hub cache.
    """
    dirs = [Path.cwd() / "checkpoints", repo_checkpoint_dir()]
    if include_torch_hub:
        dirs.append(torch_hub_checkpoint_dir())
    return unique_dirs(dirs)


def unique_dirs(dirs) -> list[Path]:
    """``dirs`` in order, each folder once (compared after resolving)."""
    unique: list[Path] = []
    for d in dirs:
        if all(Path(d).resolve() != u.resolve() for u in unique):
            unique.append(Path(d))
    return unique


def find_weight_file(filename: str | Path, search_dirs: Sequence[str | Path]) -> Path:
    """Return the path of a weight file, or raise ``MissingWeightsError``.

    Args:
        filename: a bare file name (looked up in ``search_dirs``) or a path; a path that exists is
            returned as is, otherwise its base name is looked up in ``search_dirs``.
        search_dirs: folders to look in, in order; the first one is where the message tells the
            user to put the file.

    Raises:
        MissingWeightsError: naming the file, the folders searched, where to put it and, for a
            known file, its download address.
    """
    path = Path(filename).expanduser()
    if path.is_file():
        return path
    name = path.name
    dirs = [Path(d).expanduser() for d in search_dirs]
    for d in dirs:
        candidate = d / name
        if candidate.is_file():
            return candidate
    target = path.parent if path.is_absolute() else (dirs[0] if dirs else Path.cwd() / "checkpoints")
    looked = ", ".join(str(d) for d in dirs) or "(no folders)"
    url = KNOWN_WEIGHT_URLS.get(name)
    source = f" Download it from {url}" if url else " This file is not one we know a download address for."
    raise MissingWeightsError(
        f"weight file '{name}' not found (looked for {str(path)!r} and in: {looked}). "
        f"Put it in {target}/ .{source} (weights are never downloaded at run time; see checkpoints/README.md)."
    )


def numpy_multiarray():
    """``numpy._core.multiarray`` (``numpy.core.multiarray`` before NumPy 2), where pickled NumPy objects point."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    return multiarray


def _numpy_safe_globals() -> list:
    """NumPy scalar and dtype types that may appear in a checkpoint's ``meta`` (e.g. a seed or a score).

    Reconstructing these executes no user code, so they are allowed on top of torch's weights-only list.
    """
    import numpy as np

    scalar = numpy_multiarray().scalar
    kinds = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
    return [scalar, np.dtype, *(type(np.dtype(k)) for k in kinds)]


def _torch_load_weights_only(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # retry below with NumPy scalar types allowed
    except (RuntimeError, EOFError, OSError) as err:
        raise MonoNeRFError(f"cannot read weight file {path}: {err}. Is it truncated? Download it again.") from err
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # legacy (non-zip) files cannot be scanned
            unsafe = []
        names = ", ".join(unsafe) if unsafe else str(err).splitlines()[0]
        raise MonoNeRFError(
            f"weight file {path} holds Python objects that a weights-only load refuses ({names}). "
            "We never unpickle arbitrary objects. If you trust the file, keep only its tensors: "
            f"python -c \"import torch; c = torch.load('{path}', weights_only=False); "
            f"torch.save({{'state_dict': c.get('state_dict', c)}}, '{path}')\""
        ) from err


def load_checkpoint_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weight file (on CPU, weights only) and return its flat ``{key: tensor}`` state dict.

    Accepts a bare state dict (torchvision files) or a dict with a ``state_dict`` entry (MMAction2
    files, whose ``meta`` entry is read and dropped; NumPy scalars in it are allowed).

    Raises:
        MonoNeRFError: the file is unreadable, holds disallowed objects, or has no tensor state dict.
    """
    path = Path(path)
    obj = _torch_load_weights_only(path)
    state = obj.get("state_dict", obj) if isinstance(obj, Mapping) else obj
    if not isinstance(state, Mapping) or not state:
        raise MonoNeRFError(f"weight file {path} holds no state dict (got {type(obj).__name__}).")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise MonoNeRFError(f"weight file {path}: entries that are not tensors: {bad[:_MAX_LISTED]}")
    return dict(state)


def strip_mmaction_backbone(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """MMAction2 recogniser state → backbone state: strip ``backbone.``, drop ``cls_head.*`` (method.md §8 item 21).

    Keys under neither prefix are kept unchanged (a strict load then reports them as unexpected).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("cls_head."):
            continue
        out[key[len("backbone."):] if key.startswith("backbone.") else key] = value
    return out


def _listed(keys: Iterable[str]) -> str:
    keys = list(keys)
    more = f" ... ({len(keys)} in all)" if len(keys) > _MAX_LISTED else ""
    return ", ".join(keys[:_MAX_LISTED]) + more


def check_state_matches(module: nn.Module, state: Mapping[str, torch.Tensor], *, source: str) -> None:
    """Raise ``MonoNeRFError`` unless ``state`` has exactly ``module``'s keys with the same shapes.

    The message names the first missing, unexpected and misshaped keys (with both shapes).
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} (file {tuple(state[k].shape)} vs model {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listed(unexpected)}")
    if misshaped:
        problems.append(f"misshaped keys: {_listed(misshaped)}")
    if problems:
        raise MonoNeRFError(
            f"weights from {source} do not match {type(module).__name__} ({len(expected)} tensors expected, "
            f"{len(state)} given): " + "; ".join(problems)
        )


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], *, source: str) -> None:
    """Check keys and shapes (clear error), then ``module.load_state_dict(state, strict=True)``."""
    check_state_matches(module, state, source=source)
    module.load_state_dict(dict(state), strict=True)
