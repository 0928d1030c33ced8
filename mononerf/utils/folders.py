"""Output folders that appear whole or not at all (preprocessing steps, a scene's ``images_<factor>/``)."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def fresh_dir(path: Path) -> Path:
    """Remove ``path`` if it exists and create it empty."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


@contextmanager
def staged(scene_dir: Path, *names: str) -> Iterator[dict[str, Path]]:
    """Output folders made in a hidden staging folder (``scene_dir/.NAMES.tmp/``) and moved into place only when the
    block ends without an error: a step that fails or is interrupted leaves nothing half-made (and the outputs of an
    earlier run as they were). A ``scene_dir`` this creates and that stays empty is removed too. Yields
    ``{name: its folder in the staging area}``."""
    scene_dir = Path(scene_dir)
    made_scene_dir = not scene_dir.exists()
    scene_dir.mkdir(parents=True, exist_ok=True)
    stage = fresh_dir(scene_dir / f".{'+'.join(names)}.tmp")
    try:
        dirs = {n: fresh_dir(stage / n) for n in names}
        yield dirs
        for n in names:
            if (scene_dir / n).exists():
                shutil.rmtree(scene_dir / n)
            os.replace(stage / n, scene_dir / n)
        stage.rmdir()
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if made_scene_dir and not any(scene_dir.iterdir()):
            scene_dir.rmdir()
        raise
