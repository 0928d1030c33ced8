"""Scenes in the Nerfies / HyperNeRF layout and DyCheck's iPhone layout (docs/datasets.md).

Layout of a capture folder (Nerfies; the iPhone set adds ``depth/``, ``covisible/``, ``splits/`` and ``extra.json``)::

    camera/<id>.json          orientation (world-to-camera rotation, OpenCV axes), position, focal_length,
                              principal_point (pixel centres at k + 0.5), pixel_aspect_ratio, skew,
                              radial_distortion (k1, k2, k3), tangential_distortion (p1, p2), image_size (W, H) at 1x
    rgb/<s>x/<id>.png         frames at 1/s of the camera's image size
    dataset.json              ids, train_ids, val_ids
    metadata.json             <id>: warp_id (the time), camera_id
    scene.json                center, scale (world = (x - center) * scale), near, far (in scaled units)
    depth/<s>x/<id>.npy       iPhone: LiDAR depth along the optical axis (h, w, 1), unscaled; 0 = none
    covisible/<s>x/val/<id>.png  iPhone: 255 where a validation pixel is seen by enough training frames
    splits/train.json, val.json  iPhone: frame_names, time_ids, camera_ids (preferred to dataset.json)
    disp/NNN.npy, motion_masks/NNN.png, flow/NNN_{fwd,bwd}.npz   beside the capture, per training frame in time
                              order, as the LLFF layout names them (these formats do not ship them; the
                              synthetic writer and the preprocessing write them)

The training video is the training split ordered by time. Its cameras are converted to this package's convention
(OpenGL axes, pixel index k at coordinate k), then processed as the LLFF loader processes its poses (bounds
rescale, recentring, the novel-view spiral), so that one scene written in both layouts loads to the same cameras.
The training frames keep their pinhole (fx != fy, an off-centre principal point: ``Scene.intrinsics``, which the
model's rays, NDC box and projections take); a frame is resampled (OpenCV's remap) onto the first training frame's
pinhole only when its lens has distortion or its pinhole differs (one camera per scene). The validation split
becomes ``eval_views`` (their own cameras, distortion undone onto their own pinhole).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import imageio.v3 as iio
import numpy as np

from mononerf.data import scene as llff
from mononerf.data.scene import Scene
from mononerf.errors import SceneFormatError
from mononerf.geometry import poses as P

if TYPE_CHECKING:  # the cameras need PyTorch, imported where one is made
    from mononerf.geometry.cameras import Cameras

CAMERA_KEYS = ("orientation", "position", "focal_length", "principal_point", "image_size")
RESAMPLE_TOL = 1e-3  # pixels: intrinsics this close to the first training frame's are the same camera


@dataclass
class EvalView:
    """A validation image of a capture: another camera at a time of the training video.

    Attributes:
        name: frame id.  frame: its place in the training video, a frame index (a fraction between two training
            frames when its time lies between theirs: :func:`video_position`).  camera_id: the capture's camera.
        camera: its :class:`~mononerf.geometry.cameras.Cameras` (one, processed like the training cameras, no lens).
        image_path, covisible_path: its ``rgb/`` image and ``covisible/`` mask (None: none).
        lens: the :func:`read_camera` dict when the files are undistorted as they are read, else None.

    :attr:`image` and :attr:`covisible` read the files when asked for (not held through training)."""

    name: str
    frame: float
    camera_id: int
    camera: Cameras
    image_path: Path
    covisible_path: Path | None = None
    lens: dict | None = None

    @property
    def image(self) -> np.ndarray:
        """(h, w, 3) float32 RGB in [0, 1]."""
        img = _image(self.image_path, self.camera.height, self.camera.width)
        if self.lens is None:
            return img
        return cv2.remap(img, *_undistort_maps(self.lens), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    @property
    def covisible(self) -> np.ndarray | None:
        """(h, w) bool co-visibility mask, or None."""
        if self.covisible_path is None:
            return None
        cov = llff.read_mask_image(self.covisible_path, self.camera.height, self.camera.width) > 0.5
        if self.lens is None:
            return cov
        return cv2.remap(cov.astype(np.uint8), *_undistort_maps(self.lens), cv2.INTER_NEAREST) > 0


def _json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise SceneFormatError(f"{path}: missing file ({what})")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SceneFormatError(f"{path}: not readable JSON ({exc.__class__.__name__}: {exc})") from None


def read_camera(path: Path, factor: int) -> dict:
    """One camera JSON at 1/``factor`` of its image size: OpenGL c2w (3, 4) in the capture's world, fx, fy, and the
    principal point (pixel index k at k), the image size (W, H) and OpenCV distortion (k1, k2, p1, p2, k3)."""
    cam = _json(path, "camera")
    missing = [k for k in CAMERA_KEYS if k not in cam]
    if missing:
        raise SceneFormatError(f"{path}: camera JSON lacks {', '.join(missing)}")
    try:
        rot = np.asarray(cam["orientation"], np.float64).reshape(3, 3)
        pos = np.asarray(cam["position"], np.float64).reshape(3)
        f = float(cam["focal_length"]) / factor
        pp = np.asarray(cam["principal_point"], np.float64).reshape(2) / factor
        size = np.asarray(cam["image_size"], np.float64).reshape(2)
        aspect = float(cam.get("pixel_aspect_ratio", 1.0))
        skew = float(cam.get("skew", 0.0))
        radial = np.asarray(cam.get("radial_distortion", [0, 0, 0]), np.float64).reshape(-1)
        tangential = np.asarray(cam.get("tangential_distortion", cam.get("tangential", [0, 0])),
                                np.float64).reshape(2)
    except (TypeError, ValueError) as exc:
        raise SceneFormatError(f"{path}: malformed camera ({exc})") from None
    if skew != 0.0:
        raise SceneFormatError(f"{path}: skew {skew} is not supported (the model's cameras have square, "
                               "orthogonal pixel axes); resample the capture without skew")
    radial = np.pad(radial, (0, max(0, 3 - radial.size)))[:3]
    c2w_cv = np.concatenate([rot.T, pos[:, None]], 1)  # OpenCV axes: x right, y down, z forward
    c2w = c2w_cv @ np.diag([1.0, -1.0, -1.0, 1.0])  # OpenGL: right, up, back (the translation column unchanged)
    w, h = (int(round(v / factor)) for v in size)
    return {"c2w": c2w, "fx": f, "fy": f * aspect, "cx": pp[0] - 0.5, "cy": pp[1] - 0.5, "width": w, "height": h,
            "distortion": np.array([radial[0], radial[1], tangential[0], tangential[1], radial[2]])}


def _split(folder: Path, kind: str, split: str) -> tuple[list[str], list[int], list[int]]:
    """(ids, time ids, camera ids) of a split: ``splits/<split>.json`` (iPhone) or dataset.json + metadata.json."""
    path = folder / "splits" / f"{split}.json"
    if path.is_file():
        d = _json(path, f"the {split} split")
        try:
            names, times, cams = list(d["frame_names"]), [int(t) for t in d["time_ids"]], [int(c) for c in
                                                                                          d["camera_ids"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise SceneFormatError(f"{path}: expected frame_names, time_ids and camera_ids ({exc})") from None
        if not len(names) == len(times) == len(cams):
            raise SceneFormatError(f"{path}: frame_names, time_ids and camera_ids differ in length")
        return names, times, cams
    if kind == "iphone" and split == "train":
        raise SceneFormatError(f"{path}: missing file (the iPhone layout's training split)")
    dataset = _json(folder / "dataset.json", "ids, train_ids, val_ids")
    meta = _json(folder / "metadata.json", "warp_id and camera_id per id")
    names = list(dataset.get(f"{split}_ids", []))
    if split == "train" and not names:
        raise SceneFormatError(f"{folder / 'dataset.json'}: no train_ids")
    try:
        return names, [int(meta[n]["warp_id"]) for n in names], [int(meta[n].get("camera_id", 0)) for n in names]
    except KeyError as exc:
        raise SceneFormatError(f"{folder / 'metadata.json'}: no warp_id for {exc}") from None


def pinhole(cam: dict) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of a :func:`read_camera` dict."""
    return float(cam["fx"]), float(cam["fy"]), float(cam["cx"]), float(cam["cy"])


def _undistort_maps(cam: dict, target: tuple | None = None):
    """OpenCV remap tables from the pinhole ``target`` (fx, fy, cx, cy; default ``cam``'s own, i.e. distortion
    only) into ``cam`` (its lens included). Made once per pair of intrinsics: a capture's frames share theirs."""
    return _remap_tables(pinhole(cam), cam["width"], cam["height"], tuple(cam["distortion"]),
                         pinhole(cam) if target is None else tuple(target))


@functools.lru_cache(maxsize=8)
def _remap_tables(src, width, height, distortion, dst):
    def k(fx, fy, cx, cy):
        return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])

    return cv2.initUndistortRectifyMap(k(*src), np.array(distortion), None, k(*dst), (width, height),
                                       cv2.CV_32FC1)


def _as_cameras(cam: dict, c2w: np.ndarray) -> Cameras:
    """The pinhole :class:`Cameras` (the lens left out) of a :func:`read_camera` dict at pose ``c2w``."""
    import torch

    from mononerf.geometry.cameras import Cameras

    return Cameras.create(torch.from_numpy(np.asarray(c2w)[None]), *pinhole(cam), cam["height"], cam["width"])


def _needs_resampling(cam: dict, target: tuple) -> bool:
    """A lens with distortion, or a pinhole other than ``target`` (beyond :data:`RESAMPLE_TOL` pixels)."""
    return bool(np.any(cam["distortion"])) or not np.allclose(pinhole(cam), target, rtol=0, atol=RESAMPLE_TOL)


def _image(path: Path, height: int, width: int) -> np.ndarray:
    img = llff.read_image(path)
    if img.shape[:2] != (height, width):
        raise SceneFormatError(f"{path}: {img.shape[1]}x{img.shape[0]} but its camera says {width}x{height} at "
                               "this factor")
    return img.astype(np.float32) / 255.0


def _check_size(path: Path, height: int, width: int) -> None:  # _image's checks, from the file's header only
    try:
        shape = iio.improps(path).shape
    except Exception as exc:  # imageio raises many types for missing or broken files
        raise SceneFormatError(f"{path}: not a readable image ({exc.__class__.__name__}); replace or remove "
                               "it") from None
    if tuple(shape[:2]) != (height, width):
        raise SceneFormatError(f"{path}: {shape[1]}x{shape[0]} but its camera says {width}x{height} at this factor")


def _per_frame(folder: Path, name: str, suffix: str, count: int, what: str, hint: str) -> list[Path]:
    d = folder / name
    if not d.is_dir():
        raise SceneFormatError(f"{d}: missing folder ({what}); {hint}")
    files = sorted(p for p in d.iterdir() if p.name.endswith(suffix))
    if len(files) != count:
        raise SceneFormatError(f"{d}: {len(files)} {suffix} files but the training split has {count} frames")
    return files


@dataclass
class TrainingFrames:
    """A capture's training split as the loader sees it: ``names``, ``times`` in time order, :func:`read_camera`
    dicts (positions in the scaled world ``(x - center) * scale``), float32 RGB frames (h, w, 3) (``resampled`` of
    them onto :attr:`intrinsics`: module docstring), and ``scene.json``'s values."""

    folder: Path
    kind: str
    factor: int
    names: list
    times: list
    cams: list
    images: list
    resampled: int
    center: np.ndarray
    scale: float
    near: float
    far: float

    @property
    def intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) of every frame as given: the first training camera's pinhole."""
        return pinhole(self.cams[0])

    def poses(self) -> np.ndarray:
        """(T, 3, 5) float64 ``[R | t | hwf]`` of the frames' cameras in the capture's scaled world, OpenGL
        columns, hwf = (h, w, fx) of the frames (fy and the principal point: :attr:`intrinsics`)."""
        h, w = self.images[0].shape[:2]
        return np.concatenate([np.stack([c["c2w"] for c in self.cams]),
                               np.broadcast_to(np.array([h, w, self.cams[0]["fx"]])[None, :, None],
                                               (len(self.cams), 3, 1))], 2)

    def llff_rows(self) -> np.ndarray:
        """(T, 17) ``poses_bounds.npy`` rows of :meth:`poses`: LLFF columns [down, right, back], then near, far."""
        llff_rows = P.opengl_to_llff(self.poses()).reshape(-1, 15)
        return np.concatenate([llff_rows, np.tile([[self.near, self.far]], (len(self.cams), 1))], 1)


def read_training_frames(scene_dir, kind: str = "nerfies", factor: int = 2) -> TrainingFrames:
    """The training split of a capture without its derived files (disparity, flow, motion masks): what the
    preprocessing steps work on (:class:`TrainingFrames`)."""
    folder = Path(scene_dir)
    if not folder.is_dir():
        raise SceneFormatError(f"{folder}: scene folder does not exist")
    info = _json(folder / "scene.json", "center, scale, near, far")
    try:
        center = np.asarray(info["center"], np.float64).reshape(3)
        scale, near, far = float(info["scale"]), float(info["near"]), float(info["far"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SceneFormatError(f"{folder / 'scene.json'}: expected center (3), scale, near, far ({exc})") from None
    if scale <= 0 or not 0 < near < far:
        raise SceneFormatError(f"{folder / 'scene.json'}: need scale > 0 and 0 < near < far")
    names, times, _ = _split(folder, kind, "train")
    order = sorted(range(len(names)), key=lambda i: times[i])
    names, times = [names[i] for i in order], [times[i] for i in order]
    if len(set(times)) != len(times) or len(names) < 2:
        raise SceneFormatError(f"{folder}: the training split needs >= 2 frames with distinct times (warp ids)")

    def camera(name: str) -> dict:
        cam = read_camera(folder / "camera" / f"{name}.json", factor)
        cam["c2w"][:, 3] = (cam["c2w"][:, 3] - center) * scale
        return cam

    cams = [camera(n) for n in names]
    if len({(c["width"], c["height"]) for c in cams}) != 1:
        raise SceneFormatError(f"{folder / 'camera'}: the training cameras' image sizes differ")
    if len({round(float(c["fx"]), 6) for c in cams}) != 1:
        raise SceneFormatError(f"{folder / 'camera'}: the training cameras' focal lengths differ (the model holds "
                               "one camera per scene)")
    rgb = folder / "rgb" / f"{factor}x"
    target = pinhole(cams[0])
    images, resampled = [], 0
    for n, cam in zip(names, cams):
        img = _image(rgb / f"{n}.png", cam["height"], cam["width"])
        if _needs_resampling(cam, target):
            img = cv2.remap(img, *_undistort_maps(cam, target), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            resampled += 1
        images.append(img)
    return TrainingFrames(folder, kind, factor, names, times, cams, images, resampled, center, scale, near, far)


def load_capture(scene_dir, factor: int = 2, recenter: bool = True, bd_factor: float | None = 0.9,
                 spherify: bool = False, num_novelviews: int = 60, x_trans_multiplier: float = 1.0,
                 y_trans_multiplier: float = 0.33, kind: str = "nerfies") -> Scene:
    """A Nerfies (``kind="nerfies"``) or DyCheck iPhone (``"iphone"``) capture as a :class:`Scene` (module
    docstring); the arguments are :func:`mononerf.data.scene.load_scene`'s (``factor`` picks ``rgb/<factor>x/``).

    Raises:
        SceneFormatError: naming the offending file and what was expected.
    """
    tf = read_training_frames(scene_dir, kind, factor)
    folder, names, cams, images, scale = tf.folder, tf.names, tf.cams, tf.images, tf.scale
    height, width = images[0].shape[:2]
    num = len(names)

    hint = (f"make it with python -m mononerf.preprocess {{step}} --out {folder} (or write it with the scene, as "
            "python -m mononerf.data.synthetic --format does)")
    if (folder / "disp").is_dir() or kind != "iphone":
        disp = llff.read_disparities(_per_frame(folder, "disp", ".npy", num, "disparity per training frame",
                                                hint.format(step="depth")), height, width)
    else:  # the LiDAR depth: disparity = 1 / (depth * scale), 0 where the sensor saw nothing
        disp = []
        for n, cam in zip(names, cams):
            path = folder / "depth" / f"{factor}x" / f"{n}.npy"
            if not path.is_file():
                raise SceneFormatError(f"{path}: missing file (the iPhone layout's LiDAR depth)")
            depth = llff.load_npy(path, 3, "depth (h, w, 1)")[..., 0].astype(np.float32) * np.float32(scale)
            if _needs_resampling(cam, tf.intrinsics):
                depth = cv2.remap(depth, *_undistort_maps(cam, tf.intrinsics), cv2.INTER_NEAREST)
            disp.append(np.where(depth > 0, 1.0 / np.maximum(depth, 1e-12), 0.0).astype(np.float32))
        disp = np.stack(disp, 0)
    masks = llff.read_motion_masks(_per_frame(folder, "motion_masks", ".png", num, "motion mask per training frame",
                                              hint.format(step="motion-masks")), height, width)
    ff, fm, bf, bm = llff.read_flows(folder / "flow", num, height, width, "; " + hint.format(step="flow"))

    # the LLFF loader's processing (mononerf/data/scene.py, load_scene) on the converted cameras
    poses = tf.poses().astype(np.float32)
    bds = np.tile(np.array([[tf.near, tf.far]], np.float32), (num, 1))
    poses, bds, sc = P.rescale_bounds(poses, bds, bd_factor)
    if spherify:
        poses, bds = (a.astype(np.float32) for a in P.spherify_poses(poses, bds))
    avg = P.poses_avg(poses)
    if recenter:
        poses = P.recenter_poses(poses)
    render_poses, render_focals = P.spiral_render_path(P.poses_avg(poses), num_novelviews,
                                                       x_mult=x_trans_multiplier, y_mult=y_trans_multiplier)
    scene = Scene(name=folder.name, path=folder, images=np.stack(images, 0), disp=disp, motion_masks=masks,
                  flow_fwd=ff, flow_fwd_mask=fm, flow_bwd=bf, flow_bwd_mask=bm,
                  poses=poses.astype(np.float32), bds=bds.astype(np.float32), render_poses=render_poses,
                  render_focals=render_focals, scale=float(sc), format=kind, resampled_frames=tf.resampled,
                  intrinsics=tf.intrinsics)
    to_scene = np.linalg.inv(P.homogeneous(avg)) if recenter else None
    # (a spherified capture's frame is another transform: its views are left out)
    scene.eval_views = [] if spherify else _eval_views(folder, kind, factor, tf.center, scale, sc, to_scene, tf.times)
    return scene


def video_position(times: list[int], t: int) -> float | None:
    """Where time id ``t`` falls in a training video whose frames have the increasing time ids ``times``: the frame
    index of an equal time, linearly between the two frames around it (HyperNeRF's ``interp`` captures hold their
    validation frames between the training ones; the model's time is continuous), None before the first or after
    the last training time."""
    if not times[0] <= t <= times[-1]:
        return None
    return float(np.interp(t, times, np.arange(len(times), dtype=np.float64)))


def _eval_views(folder: Path, kind: str, factor: int, center, scale: float, sc: float, to_scene, times: list[int]):
    """The validation split as :class:`EvalView`s, their cameras moved into the scene's frame like the training
    ones (the capture's scale, the bounds' rescale ``sc``, the recentring ``to_scene``), each at its place in the
    training video (:func:`video_position`); views before or after the training video are left out."""
    names, vtimes, vcams = _split(folder, kind, "val")
    views = []
    for name, t, cid in zip(names, vtimes, vcams):
        frame = video_position(times, t)
        if frame is None:
            continue
        cam = read_camera(folder / "camera" / f"{name}.json", factor)
        c2w = cam["c2w"]
        c2w[:, 3] = (c2w[:, 3] - center) * scale * sc
        if to_scene is not None:
            c2w = (to_scene @ P.homogeneous(c2w))[:3]
        image = folder / "rgb" / f"{factor}x" / f"{name}.png"
        _check_size(image, cam["height"], cam["width"])  # its pixels are read when evaluation asks for them
        cov = folder / "covisible" / f"{factor}x" / "val" / f"{name}.png"
        # lens distortion undone as the files are read, onto the same pinhole (own focal lengths, principal point)
        views.append(EvalView(name, frame, cid, _as_cameras(cam, c2w.astype(np.float32)), image,
                              cov if cov.is_file() else None, cam if np.any(cam["distortion"]) else None))
    return views


def load_nerfies(scene_dir, **kwargs) -> Scene:
    """A Nerfies / HyperNeRF capture (:func:`load_capture`)."""
    return load_capture(scene_dir, kind="nerfies", **kwargs)


def load_iphone(scene_dir, **kwargs) -> Scene:
    """A DyCheck iPhone capture (:func:`load_capture`): LiDAR disparity unless ``disp/``, co-visibility masks."""
    return load_capture(scene_dir, kind="iphone", **kwargs)

