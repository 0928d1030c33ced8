"""Render requests of the space-time viewer: a browser camera and a time → rays → one scene's images (no viser).

The browser reports its camera the way viser does: an orientation quaternion ``wxyz`` and a ``position`` in OpenCV
convention (camera x right, y down, looking along +z), a vertical field of view and the canvas aspect ratio. Our
poses are NeRF/OpenGL camera-to-world matrices (columns right, up, back; method.md §1.2), so the two differ by a flip of
the y and z axes of the camera.

The canvas has its own size and field of view, unlike the training cameras. Rays are therefore cast with the client's
intrinsics (:func:`client_rays`) and converted to NDC with the *training* intrinsics of the scene (method.md §1.3): the
NDC box is a fixed frame of the scene, so any camera's rays can be expressed in it. With the training camera's pose,
field of view and aspect, the rays are exactly those of a full render
(:meth:`~mononerf.render.field.FieldRenderer.render_views`).

Dimension vocabulary: ``H``×``W`` pixels of the requested image, ``R = H·W`` rays, ``K`` samples per ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from mononerf.errors import MonoNeRFError
from mononerf.eval import visuals
from mononerf.eval.scene_render import SceneRenderer
from mononerf.geometry.cameras import Pinhole
from mononerf.geometry.rays import RayBundle
from mononerf.render.images import prepare_rays
from mononerf.utils.checks import check_shape

# OpenCV camera axes (x right, y down, z forward) ↔ OpenGL (x right, y up, z back): flip y and z.
_FLIP_YZ = np.diag([1.0, -1.0, -1.0])


# ------------------------------------------------------------------------------------------------- camera conventions


def quat_to_matrix(wxyz) -> np.ndarray:
    """Unit quaternion (w, x, y, z) → (3, 3) rotation matrix (normalised first)."""
    w, x, y, z = np.asarray(wxyz, dtype=np.float64) / np.linalg.norm(wxyz)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat(rot) -> np.ndarray:
    """(3, 3) rotation matrix → unit quaternion (w, x, y, z) with w >= 0 (Shepperd's method)."""
    m = np.asarray(rot, dtype=np.float64)
    tr = np.trace(m)
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def c2w_from_client(wxyz, position) -> np.ndarray:
    """A viser camera (OpenCV orientation ``wxyz``, ``position``) → (3, 4) OpenGL camera-to-world pose."""
    rot = quat_to_matrix(wxyz) @ _FLIP_YZ
    return np.concatenate([rot, np.asarray(position, dtype=np.float64).reshape(3, 1)], 1)


def client_from_c2w(c2w) -> tuple[np.ndarray, np.ndarray]:
    """(3, 4|5) OpenGL camera-to-world pose → viser's (``wxyz``, ``position``); inverse of :func:`c2w_from_client`."""
    c2w = np.asarray(c2w, dtype=np.float64)
    return matrix_to_quat(c2w[:3, :3] @ _FLIP_YZ), c2w[:3, 3].copy()


def fov_y(height: float, focal: float) -> float:
    """Vertical field of view (radians) of a pinhole camera of ``height`` pixels and focal ``focal`` pixels."""
    return 2.0 * math.atan(0.5 * float(height) / float(focal))


def image_size(aspect: float, height: int) -> tuple[int, int]:
    """(H, W) of a render ``height`` pixels high with the canvas ``aspect`` (width / height)."""
    if not (aspect > 0 and math.isfinite(aspect)) or height < 1:
        raise ValueError(f"bad render size: aspect {aspect}, height {height}")
    return int(height), max(1, int(round(height * aspect)))


# ------------------------------------------------------------------------------------------------- requests


def menu() -> dict[str, str]:
    """What the viewer can show, in the order of its menu: name → label (the pictures of
    :data:`mononerf.eval.visuals.VISUALS`, as the videos)."""
    return {name: v.label for name, v in visuals.VISUALS.items()}



@dataclass(frozen=True)
class ViewRequest:
    """One render the viewer asks for.

    Attributes:
        c2w: (3, 4) OpenGL camera-to-world pose (world = the run's scene frame).
        fov_y: vertical field of view in radians.
        aspect: width / height of the canvas.
        frame: continuous frame index in [0, T-1] (time between the frames is allowed: the model takes any time).
        height: image height in pixels (the width follows from ``aspect``).
    """

    c2w: tuple
    fov_y: float
    aspect: float
    frame: float
    height: int

    @classmethod
    def from_client(cls, wxyz, position, fov: float, aspect: float, frame: float, height: int) -> "ViewRequest":
        c2w = c2w_from_client(wxyz, position)
        return cls(tuple(map(tuple, c2w.tolist())), float(fov), float(aspect), float(frame), int(height))

    @property
    def size(self) -> tuple[int, int]:
        return image_size(self.aspect, self.height)

    @property
    def focal(self) -> float:
        """Focal length in pixels of the requested image (from its height and vertical field of view)."""
        return 0.5 * self.height / math.tan(0.5 * self.fov_y)

    @property
    def camera(self) -> Pinhole:
        """The requested image's intrinsics: a centred pinhole of :attr:`size` and :attr:`focal`."""
        H, W = self.size
        return Pinhole.centred(H, W, self.focal)

    def pose(self, dtype=torch.float32, device=None) -> Tensor:
        return torch.tensor(self.c2w, dtype=dtype, device=device)


def client_rays(c2w: Tensor, camera: Pinhole, ndc_box: Pinhole, ndc: bool = True,
                pixel_offset: float = 0.0) -> RayBundle:
    """Rays of a client camera, in the scene's NDC frame (method.md §1.3, §3.1).

    Args:
        c2w: (3, 4) OpenGL camera-to-world pose of the client.
        camera: the client image's intrinsics (``Pinhole.centred(H, W, focal)`` for a browser's window).
        ndc_box: the scene's training intrinsics: they define its NDC box.
        ndc: convert to NDC (forward-facing scenes); else world rays.
        pixel_offset: the run's pixel offset (0 = the original's integer pixel grid).

    Returns:
        (1, H·W, 3)×3 rays (origins and directions in NDC, unit world view directions).
    """
    check_shape(c2w, "3 4", "c2w")
    rays_o, rays_d = camera.expand(1, c2w).image_rays(c2w[None], pixel_offset=pixel_offset)  # (1, H, W, 3)
    return prepare_rays(rays_o, rays_d, ndc_box.expand(1, c2w), ndc=ndc)


def client_view(c2w: Tensor, camera: Pinhole, ndc_box: Pinhole, ndc: bool = True,
                pixel_offset: float = 0.0) -> visuals.View:
    """Where a client's render was made from, for the pictures that depend on the camera (the induced flow, method.md
    §3.5; the neighbour pose of a rendered view is the view itself, as in the original's ``render_path``).

    Args:
        c2w: (3, 4) the client camera's pose; camera: its intrinsics; ndc_box: the scene's training intrinsics.

    Returns:
        a :class:`~mononerf.eval.visuals.View` of one scene ((1,) fields in the pose's precision).
    """
    return visuals.View(c2w[None], camera.expand(1, c2w), pixel_offset, ndc, ndc_box.expand(1, c2w))


class SceneView(SceneRenderer):
    """Renders one scene of a loaded run (:func:`mononerf.eval.video.load_run`) from any browser camera at any time
    (:class:`~mononerf.eval.scene_render.SceneRenderer`: one network pass gives every picture of :func:`menu`, on
    the features of this scene alone)."""

    def training_request(self, view: int, frame: float | None = None, height: int | None = None) -> ViewRequest:
        """The request of training camera ``view`` (its pose, field of view and aspect) at ``frame`` (default: its
        own time) and ``height`` pixels (default: the training height)."""
        d = self.pipeline.data
        c2w = d.poses[self.scene, view, :, :4].double().cpu().numpy()
        h0, w0, f0 = self.ndc_hwf
        return ViewRequest(tuple(map(tuple, c2w.tolist())), fov_y(h0, f0), w0 / h0,
                           float(view if frame is None else frame), int(height or h0))

    def render(self, req: ViewRequest, cancel: Callable[[], bool] | None = None) -> dict[str, Tensor]:
        """The per-pixel maps of one request: ``rgb_map_full``/``rgb_map_s``/``rgb_map_d`` (H, W, 3),
        ``depth_map_full``/``dynamicness_map`` (H, W), ``expected_pts_f`` (H, W, 3), on the CPU.

        ``cancel()`` is polled before each chunk of rays; when it returns True the render stops with
        :class:`~mononerf.render.field.RenderCancelled`.
        """
        if not 0.0 <= req.frame <= self.num_frames - 1:
            raise MonoNeRFError(f"time {req.frame:g} is outside the video (0..{self.num_frames - 1})")
        s = self.pipeline.renderer.settings
        H, W = req.size
        rays = client_rays(req.pose(device=self.device), req.camera, self.ndc_box, ndc=s.ndc,
                           pixel_offset=s.pixel_offset)
        out = self.render_rays(rays, req.frame, cancel)
        return {k: v.reshape((H, W) + tuple(v.shape[1:])) for k, v in out.items()}

    def image(self, req: ViewRequest, output: str, maps: dict[str, Tensor]) -> np.ndarray:
        """One output of a render (a name of :func:`menu`) as an (H, W, 3) uint8 RGB image: its
        :data:`~mononerf.eval.visuals.VISUALS` entry, normalised over this one frame (the videos' colours: depth
        between its 1st and 99th percentile, blending grey with white = dynamic, flow on the colour wheel with zero
        flow white)."""
        s = self.pipeline.renderer.settings
        entry = visuals.visual(output)
        view = client_view(req.pose(torch.float64), req.camera, self.ndc_box, ndc=s.ndc, pixel_offset=s.pixel_offset)
        shown = entry.frame({k: v[None] for k, v in maps.items()}, view)[0]
        return entry.to_rgb([shown.float().cpu().numpy()])[0]
