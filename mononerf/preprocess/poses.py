"""Camera poses with COLMAP (through pycolmap) → ``poses_bounds.npy`` (spec §6.2 COLMAP + ``generate_pose``, §1.1).

The original's COLMAP commands, run in-process: SIFT features of ``images_colmap/`` with the feature masks of
``background_mask/`` and one shared camera, exhaustive matching, incremental mapping with
``init_min_tri_angle = 4``, a single model and no colour extraction. The model is written to ``sparse/0/``.

Conversion (``generate_pose``): hwf = (height, width, params[0]) of the camera; images sorted by name;
c2w = inv([R | t]); columns reordered from COLMAP's [right, down, forward] to LLFF's [down, right, back];
near/far of each image = 5th/95th percentile of the camera-space depth of the 3D points it observes.

Camera model: COLMAP's default ``SIMPLE_RADIAL`` first (what the original gets); if that does not register every
frame, the step retries with ``SIMPLE_PINHOLE`` (a distortion-free camera: a wrongly estimated radial term can
stall the reconstruction of a short, small-baseline clip) and says so. Mapping is randomised: each camera model
gets up to three seeded mapping runs (seeds 0, 1, 2: reproducible). If none registers every frame the step stops
with :class:`ReconstructionError` saying how many frames were registered.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2  # noqa: F401  (imported before pycolmap: pycolmap loaded first breaks OpenCV's PNG writer)
import numpy as np

from mononerf.preprocess.common import PreprocessError, list_images

CAMERA_MODELS = ("SIMPLE_RADIAL", "SIMPLE_PINHOLE")
INIT_MIN_TRI_ANGLE = 4.0  # the original README's mapper setting
MAPPING_TRIALS = 3  # seeded incremental-mapping runs per camera model (measured: seeds 0-2 give 12/12, seed 3 gave 3/12)
BOUND_PERCENTILES = (5, 95)


class ReconstructionError(PreprocessError):
    """COLMAP could not register every frame."""


@dataclass
class ColmapResult:
    """What the poses step found: registered/total frames, camera model, focal, mean reprojection error."""

    registered: int
    total: int
    camera_model: str
    focal: float
    reprojection_error: float


def _pycolmap():
    try:
        import pycolmap
    except ImportError:
        raise PreprocessError("the poses step needs pycolmap: pip install -e '.[preprocess]'") from None
    return pycolmap


def extract_and_match(scene_dir: Path, camera_model: str = "SIMPLE_RADIAL", use_masks: bool = True,
                      num_threads: int = -1, seed: int = 0, verbose: bool = False) -> Path:
    """SIFT features of ``images_colmap/`` (one shared camera, feature masks) and exhaustive matching into a fresh
    ``scene_dir/database.db``; returns its path. RANSAC of the two-view geometry uses ``seed``."""
    pycolmap = _pycolmap()
    if not verbose:
        pycolmap.logging.minloglevel = 2
    image_dir = scene_dir / "images_colmap"
    list_images(image_dir, "frames for COLMAP")
    database = scene_dir / "database.db"
    database.unlink(missing_ok=True)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = camera_model
    if use_masks and (scene_dir / "background_mask").is_dir():
        reader.mask_path = str(scene_dir / "background_mask")
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = num_threads
    pycolmap.extract_features(database, image_dir, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                              extraction_options=extraction, device=pycolmap.Device.cpu)
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = seed
    pycolmap.match_exhaustive(database, verification_options=verification, device=pycolmap.Device.cpu)
    return database


def map_cameras(scene_dir: Path, seed: int = 0, num_threads: int = -1):
    """Incremental mapping of ``database.db`` with the original's settings; returns the largest model or None.

    The model is written to ``scene_dir/sparse/0`` (COLMAP's binary format).
    """
    pycolmap = _pycolmap()
    sparse = scene_dir / "sparse"
    shutil.rmtree(sparse, ignore_errors=True)
    sparse.mkdir()
    options = pycolmap.IncrementalPipelineOptions()
    options.mapper.init_min_tri_angle = INIT_MIN_TRI_ANGLE
    options.multiple_models = False
    options.extract_colors = False
    options.num_threads = num_threads
    options.random_seed = seed
    models = pycolmap.incremental_mapping(scene_dir / "database.db", scene_dir / "images_colmap", sparse,
                                          options=options)
    if not models:
        return None
    best = max(models.values(), key=lambda r: r.num_reg_images())
    (sparse / "0").mkdir(exist_ok=True)
    best.write(str(sparse / "0"))
    return best


def reconstruction_to_poses_bounds(rec, image_names: list[str]) -> np.ndarray:
    """(T, 17) ``poses_bounds.npy`` rows for ``image_names`` (in that order) from a pycolmap Reconstruction.

    Raises:
        ReconstructionError: an image of ``image_names`` is not registered, or sees no 3D point.
    """
    cameras = list(rec.cameras.values())
    cam = cameras[0]
    hwf = np.array([cam.height, cam.width, cam.params[0]], dtype=np.float64)
    by_name = {im.name: im for im in rec.images.values()}
    rows = []
    for name in image_names:
        im = by_name.get(name)
        if im is None or not im.has_pose:
            raise ReconstructionError(f"COLMAP did not register frame {name}")
        pose = im.cam_from_world() if callable(im.cam_from_world) else im.cam_from_world
        rot, trans = np.asarray(pose.rotation.matrix(), np.float64), np.asarray(pose.translation, np.float64)
        ids = [p.point3D_id for p in im.points2D if p.has_point3D()]
        if not ids:
            raise ReconstructionError(f"frame {name} sees no reconstructed 3D point; its depth bounds are unknown")
        xyz = np.stack([rec.points3D[i].xyz for i in ids], 0)
        depth = xyz @ rot[2] + trans[2]
        near, far = np.percentile(depth, BOUND_PERCENTILES)
        w2c = np.eye(4)
        w2c[:3, :3], w2c[:3, 3] = rot, trans
        c2w = np.linalg.inv(w2c)[:3]
        # COLMAP camera axes [right, down, forward] → LLFF [down, right, back]
        llff = np.stack([c2w[:, 1], c2w[:, 0], -c2w[:, 2], c2w[:, 3], hwf], axis=1)
        rows.append(np.concatenate([llff.reshape(-1), [near, far]]))
    return np.stack(rows, 0)


def estimate_poses(scene_dir: str | os.PathLike, camera_model: str = "auto", use_masks: bool = True,
                   mapping_trials: int = MAPPING_TRIALS, verbose: bool = False, log=print) -> ColmapResult:
    """Run COLMAP on ``images_colmap/`` and write ``poses_bounds.npy`` (one row per frame, sorted by name).

    Args:
        camera_model: "auto" (SIMPLE_RADIAL, then SIMPLE_PINHOLE if not every frame registers) or a COLMAP model.
        mapping_trials: incremental mapping is randomised (RANSAC, initial pair); it is run with seeds
            0, 1, … up to this many times per camera model until every frame registers (seeded: reproducible).

    Raises:
        ReconstructionError: no trial registers every frame (the message gives the best counts).
    """
    scene_dir = Path(scene_dir)
    names = [p.name for p in list_images(scene_dir / "images_colmap", "frames for COLMAP")]
    models = list(CAMERA_MODELS) if camera_model == "auto" else [camera_model]
    tried = []
    for model in models:
        extract_and_match(scene_dir, model, use_masks=use_masks, verbose=verbose)
        best = 0
        for seed in range(mapping_trials):
            rec = map_cameras(scene_dir, seed=seed)
            registered = 0 if rec is None else sum(1 for im in rec.images.values() if im.has_pose and im.name in names)
            best = max(best, registered)
            if rec is not None and registered == len(names):
                arr = reconstruction_to_poses_bounds(rec, names)
                np.save(scene_dir / "poses_bounds.npy", arr)
                return ColmapResult(registered, len(names), model, float(arr[0, 14]),
                                    float(rec.compute_mean_reprojection_error()))
        tried.append(f"{best} of {len(names)} frames with {model}")
        if model != models[-1]:
            log(f"notice: COLMAP registered at most {best} of {len(names)} frames with the {model} camera "
                f"({mapping_trials} mapping trials); retrying with {models[models.index(model) + 1]}")
    raise ReconstructionError(
        f"COLMAP could not reconstruct the camera path: it registered at most {'; '.join(tried)} "
        f"({mapping_trials} mapping trials each; every frame is needed). Try a clip with more camera motion and "
        f"texture, fewer moving objects, or another --camera-model ({', '.join(CAMERA_MODELS)})."
    )
