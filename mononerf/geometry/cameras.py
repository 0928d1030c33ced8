"""Pinhole cameras with their own intrinsics: one object for a scene's frames (docs/datasets.md).

A :class:`Cameras` holds ``N`` cameras of one image size: camera-to-world poses in the NeRF/OpenGL convention
(columns right, up, back; the camera looks along -z), focal lengths ``fx``, ``fy`` and principal point ``cx``,
``cy`` in pixels, and optionally OpenCV lens distortion. Pixel coordinates follow this package's convention (spec
§1.3, quirk ``no_half_pixel_offset``): pixel index ``k`` sits at coordinate ``k``, so an LLFF camera, whose rays
run through ``(x - W/2) / f``, has ``cx = W/2``. Formats whose pixel ``k`` covers ``[k, k + 1)`` with its centre at
``k + 0.5`` (Nerfies, DyCheck, OpenCV calibrations) convert with :meth:`Cameras.from_pixel_centres`.

Shapes: ``N`` cameras, ``*`` any further dims.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from mononerf.geometry.rays import (
    camera_to_pixels,
    intrinsic_rays,
    ndc_rays,
    ndc_to_world,
    pixel_grid,
    transform_points,
    world_to_camera,
    world_to_ndc,
)
from mononerf.utils.checks import check_shape
from mononerf.utils.tensors import constant_like


class Pinhole(NamedTuple):
    """The intrinsics of ``S`` scenes' cameras, one per scene (no pose): what the model's rays, NDC box,
    projections onto feature maps and induced flow need. Each field is a number or a per-scene (S,) tensor.

    Attributes:
        fx, fy: focal lengths in pixels.  cx, cy: principal point (pixel index k at coordinate k).
        height, width: image size in pixels.

    :meth:`centred` is the original's camera (one focal, the image centre): with it every method gives the values
    of the original's (H, W, focal) functions to the bit.
    """

    fx: float | Tensor
    fy: float | Tensor
    cx: float | Tensor
    cy: float | Tensor
    height: float | Tensor
    width: float | Tensor

    @classmethod
    def centred(cls, height, width, focal) -> "Pinhole":
        """One focal and the principal point at the image centre ``(W/2, H/2)`` (LLFF's hwf)."""
        return cls(focal, focal, width * 0.5, height * 0.5, height, width)

    @classmethod
    def of(cls, camera, image_size: tuple[int, int] | None = None) -> "Pinhole":
        """``camera`` as given (checked against ``image_size`` (W, H) when given), or, for a focal length, the
        centred camera of ``image_size``."""
        if isinstance(camera, Pinhole):
            if image_size is not None and tuple(camera.size) != tuple(image_size):
                raise ValueError(f"the camera is {camera.size[0]}x{camera.size[1]} but the images are "
                                 f"{image_size[0]}x{image_size[1]}")
            return camera
        if image_size is None:
            raise ValueError("a focal length needs the image size (W, H) to make the centred camera")
        return cls.centred(int(image_size[1]), int(image_size[0]), camera)

    @property
    def principal(self) -> tuple:
        return self.cx, self.cy

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) as ints (the scenes of one group share their size)."""
        return int(_first(self.width)), int(_first(self.height))

    def select(self, index) -> "Pinhole":
        """Some scenes' intrinsics (an index tensor / list / bool mask into the scene dim); numbers stay."""
        def pick(v):
            if isinstance(v, Tensor) and v.dim() > 0:
                return v[index.to(v.device) if isinstance(index, Tensor) else index]
            return v
        return Pinhole(*(pick(v) for v in self))

    def expand(self, n: int, like: Tensor) -> "Pinhole":
        """Every field as an (n,) tensor on ``like``'s device and dtype (a number is shared by the n scenes)."""
        def one(v, name):
            t = constant_like(v, like)
            if t.numel() == 1:
                return t.reshape(()).expand(n)
            if t.numel() != n:
                raise ValueError(f"{name} must be a number or hold one value per scene ({n}); got shape "
                                 f"{tuple(t.shape)}")
            return t.reshape(n)
        return Pinhole(*(one(v, name) for v, name in zip(self, self._fields)))

    def to(self, like: Tensor) -> "Pinhole":
        """Tensor fields on the device and in the dtype of ``like`` (numbers stay numbers)."""
        return Pinhole(*(v.to(like) if isinstance(v, Tensor) else v for v in self))

    def downscaled(self, k: int) -> "Pinhole":
        """The camera of renders ``k`` times smaller: ``H // k``, ``W // k``, focal lengths / k, and the principal
        point's offset from the image centre / k (so a centred camera stays centred, as the original's renders)."""
        if k == 1:
            return self
        h, w = max(1, self.height // k), max(1, self.width // k)
        return Pinhole(self.fx / k, self.fy / k, w * 0.5 + (self.cx - self.width * 0.5) / k,
                       h * 0.5 + (self.cy - self.height * 0.5) / k, h, w)

    # ---------------------------------------------------------------------------------------------- geometry
    def rays(self, xs: Tensor, ys: Tensor, c2w: Tensor) -> tuple[Tensor, Tensor]:
        """World rays through pixel coordinates xs, ys (S, *) of each scene's pose c2w (S, 3, 4): (S, *, 3) each."""
        return intrinsic_rays(xs, ys, self.fx, self.fy, self.cx, self.cy, c2w)

    def image_rays(self, c2w: Tensor, *, pixel_offset: float = 0.0) -> tuple[Tensor, Tensor]:
        """World rays through every pixel of each scene's pose c2w (S, 3, 4): (S, H, W, 3) each (``get_rays``'s
        values for :meth:`centred`)."""
        check_shape(c2w, "S 3 4", "c2w")
        w, h = self.size
        i, j = pixel_grid(h, w, pixel_offset=pixel_offset, device=c2w.device, dtype=c2w.dtype)
        n = c2w.shape[0]
        return self.rays(i.expand(n, h, w), j.expand(n, h, w), c2w)

    def _ndc_args(self) -> dict:
        return {"fy": self.fy, "principal": self.principal}

    def ndc_rays(self, near: float, rays_o: Tensor, rays_d: Tensor) -> tuple[Tensor, Tensor]:
        """World rays (S, *, 3) into this camera's NDC box (:func:`~mononerf.geometry.rays.ndc_rays`)."""
        return ndc_rays(self.height, self.width, self.fx, near, rays_o, rays_d, **self._ndc_args())

    def ndc_to_world(self, pts_ndc: Tensor, *, near: float = 1.0) -> Tensor:
        """NDC points (S, *, 3) of this camera's box to world (:func:`~mononerf.geometry.rays.ndc_to_world`)."""
        return ndc_to_world(pts_ndc, self.height, self.width, self.fx, near=near, **self._ndc_args())

    def world_to_ndc(self, pts_world: Tensor, *, near: float = 1.0) -> Tensor:
        """World points (S, *, 3) into this camera's NDC box (:func:`~mononerf.geometry.rays.world_to_ndc`)."""
        return world_to_ndc(pts_world, self.height, self.width, self.fx, near=near, **self._ndc_args())

    def to_pixels(self, pts_cam: Tensor) -> Tensor:
        """Camera-space points (S, *, 3) to pixels (S, *, 2) (:func:`~mononerf.geometry.rays.camera_to_pixels`)."""
        return camera_to_pixels(pts_cam, self.fx, self._principal_like(pts_cam), fy=self.fy)

    def project(self, pts_world: Tensor, w2c: Tensor) -> Tensor:
        """World points (S, *, 3) to pixels (S, *, 2) of world-to-camera poses w2c (S, 3, 4)."""
        return self.to_pixels(transform_points(w2c, pts_world))

    def _principal_like(self, like: Tensor) -> Tensor:
        """(c_x, c_y) as (2,), or (S, 2) for per-scene values, on ``like``'s device."""
        cx, cy = constant_like(self.cx, like), constant_like(self.cy, like)
        if cx.numel() == 1 and cy.numel() == 1:
            return torch.stack([cx.reshape(()), cy.reshape(())])
        return torch.stack(torch.broadcast_tensors(cx.reshape(-1), cy.reshape(-1)), -1)


def _first(v) -> float:
    return float(v.reshape(-1)[0]) if isinstance(v, Tensor) else float(v)


def _vector(value, n: int, like: Tensor, name: str) -> Tensor:
    v = torch.as_tensor(value, dtype=like.dtype, device=like.device).reshape(-1)
    if v.numel() == 1:
        v = v.expand(n)
    if v.shape != (n,):
        raise ValueError(f"{name} needs one value or one per camera ({n}), got {v.numel()}")
    return v.clone()


@dataclass(frozen=True)
class Cameras:
    """``N`` pinhole cameras sharing an image size.

    Attributes:
        c2w: (N, 3, 4) camera-to-world, OpenGL axes.
        fx, fy: (N,) focal lengths in pixels.  cx, cy: (N,) principal point (pixel index k at coordinate k).
        height, width: image size in pixels.
        distortion: (N, 5) OpenCV ``k1, k2, p1, p2, k3`` or None (none).
    """

    c2w: Tensor
    fx: Tensor
    fy: Tensor
    cx: Tensor
    cy: Tensor
    height: int
    width: int
    distortion: Tensor | None = None

    @classmethod
    def create(cls, c2w, fx, fy, cx, cy, height: int, width: int, distortion=None) -> "Cameras":
        """Cameras from arrays or numbers (one value is shared by every camera); checked and made float tensors."""
        c2w = torch.as_tensor(np.asarray(c2w) if not isinstance(c2w, Tensor) else c2w)
        c2w = c2w if c2w.is_floating_point() else c2w.float()
        check_shape(c2w, "N 3 4", "c2w")
        n = c2w.shape[0]
        dist = None
        if distortion is not None:
            dist = torch.as_tensor(np.asarray(distortion), dtype=c2w.dtype).reshape(-1, 5)
            dist = dist.expand(n, 5).clone() if dist.shape[0] == 1 else dist
            if dist.shape != (n, 5):
                raise ValueError(f"distortion needs (5,) or ({n}, 5) values, got {tuple(dist.shape)}")
        if int(height) <= 0 or int(width) <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        return cls(c2w, _vector(fx, n, c2w, "fx"), _vector(fy, n, c2w, "fy"), _vector(cx, n, c2w, "cx"),
                   _vector(cy, n, c2w, "cy"), int(height), int(width), dist)

    @classmethod
    def from_llff(cls, poses) -> "Cameras":
        """The cameras of LLFF-style poses (N, 3, 5) ``[R | t | hwf]`` (OpenGL columns, as a loaded Scene holds
        them): ``fx = fy = f``, ``(cx, cy) = (W/2, H/2)``, the rays of :func:`~mononerf.geometry.rays.get_rays`."""
        poses = torch.as_tensor(np.asarray(poses) if not isinstance(poses, Tensor) else poses)
        check_shape(poses, "N 3 5", "poses")
        h, w = int(poses[0, 0, 4]), int(poses[0, 1, 4])
        return cls.create(poses[:, :, :4], poses[:, 2, 4], poses[:, 2, 4], w * 0.5, h * 0.5, h, w)

    @classmethod
    def from_pixel_centres(cls, c2w, fx, fy, cx, cy, height: int, width: int, distortion=None) -> "Cameras":
        """Cameras whose principal point is given in the pixel-centre convention (pixel k's centre at k + 0.5:
        Nerfies, DyCheck, OpenCV): the principal point moves by half a pixel, the rays stay the same."""
        return cls.create(c2w, fx, fy, np.asarray(cx, np.float64) - 0.5, np.asarray(cy, np.float64) - 0.5,
                          height, width, distortion)

    # ------------------------------------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return int(self.c2w.shape[0])

    def __getitem__(self, index) -> "Cameras":
        """Some cameras (an int, a slice or indices), as Cameras."""
        idx = [index] if isinstance(index, int) else index
        return replace(self, c2w=self.c2w[idx], fx=self.fx[idx], fy=self.fy[idx], cx=self.cx[idx], cy=self.cy[idx],
                       distortion=None if self.distortion is None else self.distortion[idx])

    @property
    def pinhole(self) -> Pinhole:
        """The intrinsics as a :class:`Pinhole` with (N,) fields (one "scene" per camera)."""
        return Pinhole(self.fx, self.fy, self.cx, self.cy, self.height, self.width)

    @property
    def has_distortion(self) -> bool:
        return self.distortion is not None and bool((self.distortion != 0).any())

    def is_centred(self, tol: float = 0.0) -> bool:
        """Square pixels, the principal point at (W/2, H/2) within ``tol`` pixels and no distortion: the cameras
        the original's rays, NDC and projections assume (one focal per scene, the image centre)."""
        return (not self.has_distortion and bool(torch.all(self.fx == self.fy))
                and bool(torch.all((self.cx - self.width * 0.5).abs() <= tol))
                and bool(torch.all((self.cy - self.height * 0.5).abs() <= tol)))

    def scaled(self, factor: float) -> "Cameras":
        """The cameras of images resized by ``factor`` (0.5: half the width and height), as LLFF's loader scales
        the focal of ``images_<k>/``: focal lengths and principal point times ``factor``, the size rounded."""
        if factor <= 0:
            raise ValueError(f"scale factor must be positive, got {factor}")
        return replace(self, fx=self.fx * factor, fy=self.fy * factor, cx=self.cx * factor, cy=self.cy * factor,
                       height=int(round(self.height * factor)), width=int(round(self.width * factor)))

    def to_llff(self) -> np.ndarray:
        """(N, 3, 5) float32 ``[R | t | hwf]`` of centred cameras (:meth:`is_centred`); refuses others, whose
        intrinsics an hwf column cannot hold."""
        if not self.is_centred():
            raise ValueError("these cameras have fx != fy, an off-centre principal point or distortion; an LLFF hwf "
                             "column holds one focal and the image centre")
        hwf = torch.stack([torch.full_like(self.fx, self.height), torch.full_like(self.fx, self.width), self.fx], -1)
        return torch.cat([self.c2w, hwf[:, :, None]], -1).cpu().numpy().astype(np.float32)

    # ------------------------------------------------------------------------------------------------ geometry
    def rays(self, *, pixel_offset: float = 0.0) -> tuple[Tensor, Tensor]:
        """World rays through every pixel (distortion is not applied: undistort the images first).

        Returns:
            rays_o, rays_d: each (N, H, W, 3); for LLFF cameras the values of ``get_rays``.
        """
        return self.pinhole.image_rays(self.c2w, pixel_offset=pixel_offset)

    def project(self, pts_world: Tensor) -> tuple[Tensor, Tensor]:
        """World points into each camera (no distortion).

        Args:
            pts_world: (N, *, 3).
        Returns:
            pixels (N, *, 2) (x to the right, y downwards) and depth (N, *) along the viewing axis (> 0 in front).
        """
        check_shape(pts_world, "* 3", "pts_world")
        if pts_world.dim() < 2 or pts_world.shape[0] != len(self):
            raise ValueError(f"pts_world {tuple(pts_world.shape)} needs one leading row per camera ({len(self)})")
        cam = world_to_camera(pts_world, self.c2w)
        shape = (len(self),) + (1,) * (pts_world.dim() - 1)
        depth = -cam[..., 2:]
        u = cam[..., 0:1] / depth * self.fx.reshape(shape) + self.cx.reshape(shape)
        v = -cam[..., 1:2] / depth * self.fy.reshape(shape) + self.cy.reshape(shape)
        return torch.cat([u, v], -1), depth[..., 0]
