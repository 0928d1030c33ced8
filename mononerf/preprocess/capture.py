"""The depth, flow and motion-mask steps on a Nerfies / iPhone capture (docs/datasets.md), which ships none of them.

The steps work on LLFF folders (``images/``, ``poses_bounds.npy``). For a capture, the training frames as the loader
sees them (time order, undistorted where their lens has distortion:
:func:`mononerf.data.capture.read_training_frames`) and their cameras are written into a hidden LLFF view of the
capture (``SCENE/.llff_view/``; the pinhole's fy and principal point, which ``poses_bounds.npy``'s hwf column cannot
hold, in :data:`~mononerf.preprocess.motion_masks.INTRINSICS_FILE`), the step runs there, and its outputs move beside the capture under the names the
loader reads (``disp/``, ``flow/``, ``motion_masks/``, with their ``*_png/`` previews): computed on the very frames
the model trains on. The view is removed afterwards; the capture's own files are not touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from mononerf.preprocess.common import PreprocessError
from mononerf.preprocess.motion_masks import INTRINSICS_FILE

VIEW = ".llff_view"
OUTPUTS = {"depth": ("disp", "disp_png"), "flow": ("flow", "flow_png"), "motion-masks": ("motion_masks",)}
INPUTS = {"depth": (), "flow": (), "motion-masks": ("flow",)}  # the capture's derived folders a step reads


def capture_kind(scene_dir: Path) -> str | None:
    """``nerfies`` or ``iphone`` for a capture folder, None for anything else (an LLFF scene, a new folder)."""
    from mononerf.data.formats import detect_format
    from mononerf.errors import SceneFormatError

    try:
        kind = detect_format(scene_dir)
    except SceneFormatError:
        return None
    return None if kind == "llff" else kind


def write_view(scene_dir: Path, kind: str, factor: int) -> Path:
    """The hidden LLFF view of a capture's training frames (module docstring); returns its folder."""
    from mononerf.data.capture import read_training_frames
    from mononerf.utils.images import to_uint8, write_image

    frames = read_training_frames(scene_dir, kind, factor)
    view = scene_dir / VIEW
    if view.exists():
        shutil.rmtree(view)
    (view / "images").mkdir(parents=True)
    for i, img in enumerate(frames.images):
        write_image(view / "images" / f"{i:03d}.png", to_uint8(img), error=PreprocessError)
    np.save(view / "poses_bounds.npy", frames.llff_rows())
    np.save(view / INTRINSICS_FILE, np.asarray(frames.intrinsics, np.float64))
    return view


def run_on_capture(step: str, scene_dir: Path, kind: str, factor: int, run: Callable[[Path], str]) -> str:
    """Run ``run(view_folder)`` (a step of :mod:`mononerf.preprocess.cli` on an LLFF folder) on the capture's view
    and move the step's outputs beside the capture; returns the step's summary."""
    if step not in OUTPUTS:
        raise PreprocessError(f"{scene_dir} is a capture in the {kind} layout: it brings its own frames and cameras, "
                              "so only the depth, flow and motion-masks steps run on it")
    view = write_view(scene_dir, kind, factor)
    try:
        for name in INPUTS[step]:
            if not (scene_dir / name).is_dir():
                raise PreprocessError(f"{scene_dir / name}: missing; run the '{name}' step first")
            shutil.copytree(scene_dir / name, view / name)
        summary = run(view)
        for name in OUTPUTS[step]:
            if (view / name).is_dir():
                if (scene_dir / name).exists():
                    shutil.rmtree(scene_dir / name)
                shutil.move(str(view / name), str(scene_dir / name))
    finally:
        shutil.rmtree(view, ignore_errors=True)
    summary = summary.replace(" from images/", "")  # the view's folder: the capture's frames
    return f"{summary} of the {kind} capture's training frames (rgb/{factor}x/, in time order)"
