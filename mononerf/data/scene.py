"""Read one scene in the original's on-disk format (DynNeRF release layout; method.md §1.1–1.2).

Layout of ``data/<Scene>/``::

    poses_bounds.npy        (T, 17): 3x5 [R | t | hwf] in LLFF column order [down, right, back] + near/far bounds
    images/                 full-resolution frames (only their size is read, and the source of images_<factor>/)
    images_<factor>/        training frames (factor 2 in every released config)
    disp/*.npy              per-frame disparity (inverse depth), any resolution
    motion_masks/*.png      per-frame motion mask, non-zero = dynamic pixel
    flow/NNN_fwd.npz        frames 0..T-2, keys ``flow`` (h, w, 2) pixel units [u, v] and ``mask`` (h, w)
    flow/NNN_bwd.npz        frames 1..T-1
    multiview_GT/           evaluation only (method.md §6.1)

Every problem found stops with :class:`~mononerf.errors.SceneFormatError` naming the file and what was expected.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import imageio.v3 as iio
import numpy as np

from mononerf.errors import SceneFormatError
from mononerf.geometry import poses as P
from mononerf.utils.folders import staged

if TYPE_CHECKING:  # the cameras need PyTorch; reading a scene does not
    from mononerf.geometry.cameras import Cameras

IMAGE_SUFFIXES = ("JPG", "jpg", "png")


@dataclass
class Scene:
    """One loaded scene. Arrays are float32 with the frame axis first.

    Attributes:
        name: folder name (``Balloon1``).
        path: scene folder.
        images: (T, H, W, 3) RGB in [0, 1].
        disp: (T, H, W) disparity as stored (MiDaS inverse depth for real scenes).
        motion_masks: (T, H, W) 1 = dynamic pixel.
        flow_fwd / flow_bwd: (T, H, W, 2) optical flow to frame t+1 / t-1 in pixels (zeros where absent).
        flow_fwd_mask / flow_bwd_mask: (T, H, W) forward-backward consistency masks.
        poses: (T, 3, 5) processed camera-to-world poses (OpenGL axes, scaled, recentred) with hwf column.
        bds: (T, 2) scaled near/far depth bounds.
        render_poses: (V, 3, 5) novel-view spiral (method.md §1.2 step 5); render_focals: V focals.
        scale: the factor applied to translations and bounds.
        format: the layout it was read from (``llff``, ``nerfies``, ``iphone``; docs/datasets.md).
        eval_views: validation images of other cameras at the video's times
            (:class:`~mononerf.data.capture.EvalView`; the iPhone and Nerfies layouts' val split), else empty.
        resampled_frames: training frames resampled by the loader (undistorted, or onto the first frame's camera).
        intrinsics: (fx, fy, cx, cy) of every training frame in pixels (pixel index k at coordinate k), where the
            camera is not LLFF's centred one; None = ``(f, f, W/2, H/2)`` from the hwf column of ``poses``.
    """

    name: str
    path: Path
    images: np.ndarray
    disp: np.ndarray
    motion_masks: np.ndarray
    flow_fwd: np.ndarray
    flow_fwd_mask: np.ndarray
    flow_bwd: np.ndarray
    flow_bwd_mask: np.ndarray
    poses: np.ndarray
    bds: np.ndarray
    render_poses: np.ndarray
    render_focals: list = field(default_factory=list)
    scale: float = 1.0
    format: str = "llff"
    eval_views: list = field(default_factory=list)
    resampled_frames: int = 0
    intrinsics: tuple | None = None

    @property
    def num_frames(self) -> int:
        return int(self.images.shape[0])

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    @property
    def focal(self) -> float:
        """f_x of the training frames (the hwf column's focal)."""
        return float(self.poses[0, 2, 4])

    @property
    def frame_intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) of the training frames: :attr:`intrinsics`, or LLFF's ``(f, f, W/2, H/2)``."""
        if self.intrinsics is not None:
            return tuple(float(v) for v in self.intrinsics)
        return self.focal, self.focal, self.width * 0.5, self.height * 0.5

    @property
    def cameras(self) -> Cameras:
        """The training frames' cameras (:class:`~mononerf.geometry.cameras.Cameras`, one per frame)."""
        from mononerf.geometry.cameras import Cameras

        if self.intrinsics is None:
            return Cameras.from_llff(self.poses)
        return Cameras.create(self.poses[:, :, :4], *self.frame_intrinsics, self.height, self.width)

    @property
    def forward_facing(self) -> bool:
        """Every training camera looks within :data:`~mononerf.geometry.poses.FORWARD_FACING_DEG` of the average
        camera's view: NDC suits the scene."""
        return P.view_spread(self.poses) <= P.FORWARD_FACING_DEG

    @property
    def static_masks(self) -> np.ndarray:
        """(T, H, W) 1 = static pixel: the original trains with ``1 - motion_mask`` (method.md §1.1)."""
        return 1.0 - self.motion_masks

    def grids(self) -> np.ndarray:
        """(T, H, W, 8) ``[x, y, fwd_u, fwd_v, fwd_mask, bwd_u, bwd_v, bwd_mask]``, integer pixels (method.md §1.1)."""
        x, y = np.meshgrid(np.arange(self.width, dtype=np.float32), np.arange(self.height, dtype=np.float32),
                           indexing="xy")
        xy = np.broadcast_to(np.stack([x, y], -1), (self.num_frames, self.height, self.width, 2))
        return np.concatenate([xy, self.flow_fwd, self.flow_fwd_mask[..., None],
                               self.flow_bwd, self.flow_bwd_mask[..., None]], axis=-1).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------- readers

def _not_a_folder(path: Path, what: str) -> SceneFormatError:
    if path.exists():
        return SceneFormatError(f"{path}: is a file, not a folder ({what})")
    return SceneFormatError(f"{path}: missing folder ({what})")


def _listdir(folder: Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    if not folder.is_dir():
        raise _not_a_folder(folder, what)
    files = [folder / f for f in sorted(os.listdir(folder)) if f.endswith(suffixes)]
    if not files:
        raise SceneFormatError(f"{folder}: no {'/'.join(suffixes)} files ({what})")
    return files


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; alpha dropped, grey expanded; unreadable → SceneFormatError naming the file."""
    try:
        img = iio.imread(path)
    except Exception as exc:  # imageio raises many types for broken files (its message: a plugin hint)
        raise SceneFormatError(f"{path}: not a readable image ({exc.__class__.__name__}); replace or remove "
                               "it") from None
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] < 3:
        raise SceneFormatError(f"{path}: expected an RGB image (H, W, 3), got shape {img.shape}")
    if img.dtype != np.uint8:
        raise SceneFormatError(f"{path}: expected 8-bit image, got {img.dtype}")
    return img[..., :3]


def read_mask_image(path: Path, height: int, width: int) -> np.ndarray:
    try:
        img = iio.imread(path)
    except Exception as exc:
        raise SceneFormatError(f"{path}: unreadable mask image ({exc.__class__.__name__}: {exc})") from None
    if img.ndim == 3:
        img = img[..., 0]
    if img.ndim != 2:
        raise SceneFormatError(f"{path}: expected a single-channel mask (H, W), got shape {img.shape}")
    check_aspect(path, img.shape, height, width, "the motion mask")
    return img.astype(np.float64) / 255.0


def load_npy(path: Path, ndim: int, what: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise SceneFormatError(f"{path}: unreadable .npy ({exc.__class__.__name__}: {exc})") from None
    if arr.ndim != ndim:
        raise SceneFormatError(f"{path}: expected {what} with {ndim} dims, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise SceneFormatError(f"{path}: contains NaN or inf values")
    return arr


def check_aspect(path: Path, shape: tuple[int, ...], height: int, width: int, what: str) -> None:
    """A per-pixel map of any resolution is resized to the frame; refuse one whose aspect ratio is not the frame's
    (a map saved transposed, (w, h), would otherwise be stretched into wrong supervision). ``shape`` starts (h, w);
    the map's height must be its width times the frame's h/w, within 1 pixel and 2 %."""
    h, w = int(shape[0]), int(shape[1])
    expected = w * height / width
    if abs(h - expected) > 1.0 + 0.02 * h:
        raise SceneFormatError(f"{path}: {what} is {h}x{w} (h x w) but the frames are {height}x{width}: the aspect "
                               "ratios differ (saved transposed, as (w, h)?); store it as (h, w) at the frame's "
                               "aspect ratio")


def _load_map(path: Path, height: int, width: int) -> np.ndarray:
    """One disparity map (h, w) as float32, at the frame's aspect ratio."""
    disp = load_npy(path, 2, "a disparity map (h, w)")
    check_aspect(path, disp.shape, height, width, "the disparity map")
    return disp.astype(np.float32)


def _load_flow(path: Path, height: int, width: int):
    """Read one flow file and resize it to (height, width) as the original does (method.md §1.1, quirk §8.12)."""
    if not path.is_file():
        raise SceneFormatError(f"{path}: missing flow file")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "flow" not in data or "mask" not in data:
                raise SceneFormatError(f"{path}: expected keys 'flow' and 'mask', found {sorted(data.files)}")
            flow, mask = data["flow"], data["mask"]
    except SceneFormatError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise SceneFormatError(f"{path}: unreadable .npz ({exc.__class__.__name__}: {exc})") from None
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise SceneFormatError(f"{path}: expected 'flow' of shape (h, w, 2), got {flow.shape}")
    if mask.shape != flow.shape[:2]:
        raise SceneFormatError(f"{path}: 'mask' shape {mask.shape} does not match 'flow' {flow.shape[:2]}")
    if not np.all(np.isfinite(flow)):
        raise SceneFormatError(f"{path}: 'flow' contains NaN or inf values")
    check_aspect(path, flow.shape, height, width, "the flow")
    flow = flow.astype(np.float32)
    h_old, w_old = flow.shape[:2]
    if (h_old, w_old) != (height, width):
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
        # The original scales the x component by the height ratio (method.md §8.12); equal for uniform factors.
        flow[..., 0] *= height / h_old
        flow[..., 1] *= width / w_old
    mask = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_NEAREST)
    return flow, mask


def read_disparities(files: list[Path], height: int, width: int) -> np.ndarray:
    """(T, H, W) float32 disparity maps, each resized to the frame (nearest)."""
    return np.stack([cv2.resize(_load_map(f, height, width), (width, height), interpolation=cv2.INTER_NEAREST)
                     for f in files], 0)


def read_motion_masks(files: list[Path], height: int, width: int) -> np.ndarray:
    """(T, H, W) float32 motion masks, 1 = dynamic pixel (any non-zero value), each resized to the frame (nearest)."""
    masks = np.stack([cv2.resize(read_mask_image(f, height, width), (width, height),
                                 interpolation=cv2.INTER_NEAREST) for f in files], 0)
    return (masks > 1e-3).astype(np.float32)


def read_flows(flow_dir: Path, num: int, height: int, width: int, hint: str = ""):
    """The ``NNN_fwd.npz`` (frames 0..T-2) and ``NNN_bwd.npz`` (1..T-1) flows of ``flow_dir`` at the frame's size:
    (T, H, W, 2) forward flow, (T, H, W) its mask, then the backward pair (zeros where there is no neighbour).
    ``hint`` ends the message of a missing folder."""
    if not flow_dir.is_dir():
        raise SceneFormatError(f"{flow_dir}: missing folder (optical flow NNN_fwd.npz / NNN_bwd.npz)" + hint)
    zeros_flow = np.zeros((height, width, 2), np.float32)
    zeros_mask = np.zeros((height, width), np.float32)
    ff, fm, bf, bm = [], [], [], []
    for i in range(num):
        f, m = (zeros_flow, zeros_mask) if i == num - 1 else _load_flow(flow_dir / f"{i:03d}_fwd.npz", height, width)
        ff.append(f)
        fm.append(m)
        f, m = (zeros_flow, zeros_mask) if i == 0 else _load_flow(flow_dir / f"{i:03d}_bwd.npz", height, width)
        bf.append(f)
        bm.append(m)
    return (np.stack(ff, 0), np.stack(fm, 0).astype(np.float32), np.stack(bf, 0),
            np.stack(bm, 0).astype(np.float32))


def make_downsampled_images(scene_dir: Path, factor: int) -> Path:
    """Write ``images_<factor>/`` from ``images/`` in Python (the original ran ImageMagick, method.md §8.31)."""
    src_files = _listdir(scene_dir / "images", IMAGE_SUFFIXES + ("jpeg", "PNG"), "full-resolution frames")
    name = f"images_{factor}"
    with staged(scene_dir, name) as dirs:  # an unreadable frame, a full disk, an interrupt: no half-made folder
        for f in src_files:
            img = read_image(f)
            h, w = img.shape[:2]
            small = cv2.resize(img, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
            iio.imwrite(dirs[name] / (f.stem + ".png"), small)
    return scene_dir / name


# ------------------------------------------------------------------------------------------------------------ loader

def read_poses_bounds(scene_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3, 5) LLFF-order poses and (T, 2) bounds from ``poses_bounds.npy``, validated."""
    path = scene_dir / "poses_bounds.npy"
    if not path.is_file():
        raise SceneFormatError(f"{path}: missing file (camera poses and depth bounds, shape (T, 17))")
    arr = load_npy(path, 2, "camera poses (T, 17)")
    if arr.shape[1] != 17 or arr.shape[0] < 2:
        raise SceneFormatError(f"{path}: expected shape (T, 17) with T >= 2, got {arr.shape}")
    bds = arr[:, -2:]
    if np.any(bds <= 0) or np.any(bds[:, 0] > bds[:, 1]):
        raise SceneFormatError(f"{path}: near/far bounds must be positive with near <= far")
    return arr[:, :-2].reshape(-1, 3, 5), bds


def load_scene(
    scene_dir: str | os.PathLike,
    factor: int = 2,
    recenter: bool = True,
    bd_factor: float | None = 0.9,
    spherify: bool = False,
    num_novelviews: int = 60,
    x_trans_multiplier: float = 1.0,
    y_trans_multiplier: float = 0.33,
) -> Scene:
    """Load a scene as the original's ``load_llff_data`` does (method.md §1.1–1.2).

    Args:
        scene_dir: the scene folder.
        factor: read ``images_<factor>/`` (made from ``images/`` when missing); focal is divided by it.
        recenter: express poses relative to the average camera.
        bd_factor: scale so that the 5th-percentile near bound is ``1/bd_factor`` (None: no scaling).
        spherify: NeRF's 360° normalisation (the original has the flag but no code; NDC must then be off).
        num_novelviews, x/y_trans_multiplier: the novel-view spiral (method.md §1.2 step 5).
    Raises:
        SceneFormatError: naming the offending file and what was expected.
    """
    scene_dir = Path(scene_dir)
    if not scene_dir.is_dir():
        if scene_dir.exists():
            raise SceneFormatError(f"{scene_dir}: is a file, not a scene folder")
        raise SceneFormatError(f"{scene_dir}: scene folder does not exist")
    poses_llff, bds = read_poses_bounds(scene_dir)
    num = poses_llff.shape[0]

    img_dir = scene_dir / f"images_{factor}" if factor != 1 else scene_dir / "images"
    if not img_dir.is_dir():
        if not (scene_dir / "images").is_dir():
            raise SceneFormatError(f"{img_dir}: missing folder (training frames), and no images/ to make it from")
        img_dir = make_downsampled_images(scene_dir, factor)
    img_files = _listdir(img_dir, IMAGE_SUFFIXES, "training frames")
    if len(img_files) != num:
        for f in img_files:  # a stray file with an image's name is the likeliest cause: name it
            read_image(f)
        raise SceneFormatError(f"{img_dir}: {len(img_files)} images but poses_bounds.npy has {num} poses")
    imgs = [read_image(f) for f in img_files]
    height, width = imgs[0].shape[:2]
    for f, im in zip(img_files, imgs):
        if im.shape[:2] != (height, width):
            raise SceneFormatError(f"{f}: size {im.shape[1]}x{im.shape[0]} differs from {img_files[0].name} "
                                   f"({width}x{height})")
    images = np.stack(imgs, 0).astype(np.float32) / 255.0

    disp_files = _listdir(scene_dir / "disp", (".npy",), "disparity maps")
    if len(disp_files) != num:
        raise SceneFormatError(f"{scene_dir / 'disp'}: {len(disp_files)} .npy files but {num} frames")
    disp = read_disparities(disp_files, height, width)

    mask_files = _listdir(scene_dir / "motion_masks", ("png",), "motion masks")
    if len(mask_files) != num:
        raise SceneFormatError(f"{scene_dir / 'motion_masks'}: {len(mask_files)} .png files but {num} frames")
    masks = read_motion_masks(mask_files, height, width)
    ff, fm, bf, bm = read_flows(scene_dir / "flow", num, height, width)

    # Pose processing (method.md §1.2): axis fix, hwf of the loaded images, scale, recentre, render path.
    poses = P.llff_to_opengl(poses_llff).astype(np.float32)
    poses[:, 0, 4] = height
    poses[:, 1, 4] = width
    poses[:, 2, 4] = poses[:, 2, 4] / factor
    bds = bds.astype(np.float32)
    poses, bds, scale = P.rescale_bounds(poses, bds, bd_factor)
    if spherify:
        poses, bds = P.spherify_poses(poses, bds)
        poses, bds = poses.astype(np.float32), bds.astype(np.float32)
    if recenter:
        poses = P.recenter_poses(poses)
    render_poses, render_focals = P.spiral_render_path(P.poses_avg(poses), num_novelviews,
                                                       x_mult=x_trans_multiplier, y_mult=y_trans_multiplier)
    return Scene(
        name=scene_dir.name, path=scene_dir, images=images, disp=disp, motion_masks=masks,
        flow_fwd=ff, flow_fwd_mask=fm, flow_bwd=bf, flow_bwd_mask=bm,
        poses=poses.astype(np.float32), bds=bds.astype(np.float32), render_poses=render_poses,
        render_focals=render_focals, scale=float(scale),
    )
