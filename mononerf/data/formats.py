"""The scene-folder layouts by name (``train.dataset_type``; docs/datasets.md) and the reader that picks one.

Kept apart from the dataset (which needs PyTorch) so that checking or loading scenes imports only what reading them
needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from mononerf.data.capture import load_iphone, load_nerfies
from mononerf.data.scene import Scene, load_scene
from mononerf.errors import SceneFormatError

# Scene folder formats (``train.dataset_type``; docs/datasets.md): name -> loader(folder, factor=, spherify=,
# num_novelviews=, x_trans_multiplier=, y_trans_multiplier=) -> Scene. A new format is one loader returning a Scene
# and one entry (and, for ``auto``, a rule in detect_format).
SCENE_FORMATS: dict[str, Callable[..., Scene]] = {"llff": load_scene, "nerfies": load_nerfies, "iphone": load_iphone}
AUTO_FORMAT = "auto"  # each folder's format from its files (detect_format)


def read_scenes(scene_dirs: Sequence[str | Path], scene_format: str = "llff", **load_kwargs) -> list[Scene]:
    """Each folder read with the ``scene_format`` loader of :data:`SCENE_FORMATS` (``load_kwargs`` go to it), or
    with the loader of its own format (``auto``: :func:`detect_format`)."""
    if scene_format != AUTO_FORMAT and scene_format not in SCENE_FORMATS:
        raise SceneFormatError(f"unknown scene format {scene_format!r} (train.dataset_type); the formats are "
                               f"{', '.join(SCENE_FORMATS)} and {AUTO_FORMAT} (mononerf.data.formats.SCENE_FORMATS)")
    return [SCENE_FORMATS[detect_format(d) if scene_format == AUTO_FORMAT else scene_format](d, **load_kwargs)
            for d in scene_dirs]


def detect_format(scene_dir) -> str:
    """``llff`` (poses_bounds.npy), ``iphone`` (splits/ or depth/ beside dataset.json) or ``nerfies``
    (dataset.json); one line naming what was looked for otherwise."""
    folder = Path(scene_dir)
    if (folder / "poses_bounds.npy").is_file():
        return "llff"
    if (folder / "dataset.json").is_file():
        return "iphone" if (folder / "splits").is_dir() or (folder / "depth").is_dir() else "nerfies"
    raise SceneFormatError(f"{folder}: neither poses_bounds.npy (LLFF) nor dataset.json (Nerfies / iPhone): not a "
                           "scene folder of a known format")
