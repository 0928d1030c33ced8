"""One scene of a loaded run rendered through any rays at any time: the viewer's renders and DyCheck's validation
cameras (:mod:`mononerf.eval.dycheck`) go through :class:`SceneRenderer`.

A camera other than the scene's training camera (its own size, focal lengths and principal point) casts its own
rays; they are converted to NDC with the scene's *training* intrinsics (docs/viewer.md), a fixed frame of the scene, so
that any camera's rays can be expressed in it. With the training camera, the rays are exactly those of
:meth:`~mononerf.render.field.FieldRenderer.render_views`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from mononerf.errors import MonoNeRFError
from mononerf.eval import visuals
from mononerf.geometry.cameras import Cameras, Pinhole
from mononerf.geometry.poses import frame_time
from mononerf.geometry.rays import RayBundle
from mononerf.render.images import prepare_rays


class SceneRenderer:
    """Renders one scene of a loaded run (:meth:`Pipeline.from_run`) through given rays at any time.

    One network pass gives every map the pictures read (:func:`~mononerf.eval.visuals.reads`; the joint static + dynamic query of the renderer's test
    settings: no jitter, no noise, no t±1 passes), on the features of this scene alone
    (:meth:`SceneFeatures.select`), so a multi-scene run costs one scene per frame.
    """

    def __init__(self, pipeline, scene: int, chunk: int = 1024, n_samples: int | None = None):
        if not 0 <= scene < pipeline.data.num_scenes:
            raise MonoNeRFError(f"scene {scene} is not in this run (0..{pipeline.data.num_scenes - 1})")
        self.run_scene = scene  # the run's index; ``scene`` is the index in its group of one size and length
        if len(getattr(pipeline, "groups", [pipeline])) > 1:
            pipeline, scene = getattr(pipeline, "pipeline", pipeline).for_scene(scene)
        d = pipeline.data
        if pipeline.renderer.features is None:
            raise MonoNeRFError("the run's features are not encoded (call pipeline.encode() first)")
        self.pipeline, self.scene, self.chunk = pipeline, scene, int(chunk)
        self.n_samples = int(n_samples or pipeline.renderer.settings.n_samples)
        if self.n_samples < 2:
            raise MonoNeRFError(f"--n-samples {self.n_samples}: need at least 2 samples per ray")
        self.num_frames = d.num_frames
        self.ndc_box: Pinhole = d.camera.select([scene])  # the scene's training intrinsics: its NDC box
        self.device = d.device
        self.feats = pipeline.renderer.features.select([scene])  # (projected maps: the renderer's one cache)

    @property
    def ndc_hwf(self) -> tuple[float, float, float]:
        """(H0, W0, f_y) of the scene's training camera (the viewer's default window and field of view)."""
        box = self.ndc_box
        return float(box.height), float(box.width), float(box.fy[0])

    @property
    def name(self) -> str:
        return self.pipeline.data.names[self.scene]

    def rays_of(self, rays_o: Tensor, rays_d: Tensor) -> RayBundle:
        """World rays (1, R, 3) ×2 of a camera as the renderer takes them: in the scene's NDC box when the run
        renders in NDC (the training intrinsics :attr:`ndc_box` define it), with unit world view directions."""
        return prepare_rays(rays_o, rays_d, self.ndc_box.to(rays_o), ndc=self.pipeline.renderer.settings.ndc)

    def camera_rays(self, camera: Cameras) -> RayBundle:
        """The rays of one camera (:class:`~mononerf.geometry.cameras.Cameras` of length 1, any intrinsics; lens
        distortion is refused), (1, H·W, 3) ×3."""
        if len(camera) != 1:
            raise MonoNeRFError(f"camera_rays renders one camera, got {len(camera)}")
        if camera.has_distortion:
            raise MonoNeRFError("this camera has lens distortion; undistort its images and use the pinhole camera")
        cam = Cameras(camera.c2w.to(self.device, torch.float32), *(v.to(self.device, torch.float32) for v in
                      (camera.fx, camera.fy, camera.cx, camera.cy)), camera.height, camera.width)
        rays_o, rays_d = cam.rays(pixel_offset=self.pipeline.renderer.settings.pixel_offset)
        return self.rays_of(rays_o.reshape(1, -1, 3), rays_d.reshape(1, -1, 3))

    def render_rays(self, rays: RayBundle, frame: float, cancel: Callable[[], bool] | None = None) -> dict[str, Tensor]:
        """The maps every picture reads (:func:`~mononerf.eval.visuals.reads`) per ray, (R, ...) on the CPU, at ``frame`` (a frame index; fractions are
        times between frames). ``cancel()`` is polled before each chunk of rays (:class:`~mononerf.render.field.RenderCancelled`)."""
        if not 0.0 <= frame <= self.num_frames - 1:
            raise MonoNeRFError(f"time {frame:g} is outside the video (0..{self.num_frames - 1})")
        t = torch.tensor([frame_time(frame, self.num_frames)], dtype=torch.float32, device=self.device)
        out = self.pipeline.renderer.render_image(rays, t, keys=visuals.reads(), feats=self.feats, chunk=self.chunk,
                                                  n_samples=self.n_samples, cancel=cancel)
        return {k: v[0] for k, v in out.items()}

    def render_camera(self, camera: Cameras, frame: float) -> dict[str, Tensor]:
        """The maps of one camera at ``frame``, each (H, W, ...) on the CPU."""
        out = self.render_rays(self.camera_rays(camera), frame)
        return {k: v.reshape((camera.height, camera.width) + tuple(v.shape[1:])) for k, v in out.items()}
