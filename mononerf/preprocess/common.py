"""Shared helpers of the preprocessing steps: weight look-up, image listing, progress bars, step skipping.

Weights are never downloaded (docs/decisions.md): each model's file is looked for in ``--weights-dir`` (when given),
``./weights/`` (where the original's README unzips ``weights.zip``), ``./checkpoints/``, the source tree's
``checkpoints/`` and, for torchvision's own files, ``$TORCH_HOME/hub/checkpoints/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from mononerf.errors import MissingWeightsError, MonoNeRFError
from mononerf.models.weights import default_checkpoint_dirs, torch_hub_checkpoint_dir, unique_dirs

IMAGE_SUFFIXES = (".png", ".jpg", ".PNG", ".JPG", ".jpeg")


class PreprocessError(MonoNeRFError):
    """A preprocessing step cannot go on (the message says why and what to do)."""


def weight_dirs(weights_dir: str | os.PathLike | None = None, *, torch_hub: bool = False) -> list[Path]:
    """Folders searched for a preprocessing weight file, in order, without duplicates."""
    dirs = [Path(weights_dir)] if weights_dir else []
    dirs += [Path.cwd() / "weights", *default_checkpoint_dirs()]
    if torch_hub:
        dirs.append(torch_hub_checkpoint_dir())
    return unique_dirs(dirs)


def find_any_weight(names: Sequence[str], dirs: Sequence[Path], *, what: str, urls: dict[str, str]) -> Path:
    """The first of ``names`` found in ``dirs`` (names in order of preference), else ``MissingWeightsError``.

    The message names every accepted file, the folders searched, and where each file is downloaded from.
    """
    for name in names:
        for d in dirs:
            if (d / name).is_file():
                return d / name
    where = "; ".join(f"{n} from {urls[n]}" if n in urls else n for n in names)
    raise MissingWeightsError(
        f"{what}: no weight file found. Looked for {', '.join(repr(n) for n in names)} in: "
        f"{', '.join(str(d) for d in dirs)}. Put one of them in {dirs[0]}/ (or pass --weights-dir). "
        f"Download: {where}. (Weights are never downloaded at run time.)"
    )


def list_images(folder: Path, what: str) -> list[Path]:
    """Sorted image files of ``folder`` (png/jpg), or ``PreprocessError`` saying which step makes them."""
    if not folder.is_dir():
        raise PreprocessError(f"{folder}: missing folder ({what}); run the 'frames' step first")
    files = sorted(p for p in folder.iterdir() if p.suffix in IMAGE_SUFFIXES)
    if not files:
        raise PreprocessError(f"{folder}: no png/jpg images ({what}); run the 'frames' step first")
    return files


def progress(iterable: Iterable, enabled: bool, desc: str, total: int | None = None):
    """``iterable`` wrapped in a tqdm bar when ``enabled``."""
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit="frame")


def should_skip(outputs: Sequence[Path], force: bool) -> bool:
    """True when every output exists (a folder counts when non-empty) and ``force`` is off."""
    if force:
        return False
    for p in outputs:
        if not p.exists() or (p.is_dir() and not any(p.iterdir())):
            return False
    return True
