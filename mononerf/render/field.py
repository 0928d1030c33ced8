"""The model plus its render settings as one module: a training step is one ``forward`` (DDP wraps it), and every full
image (training pictures, videos, evaluation dumps, edits, the viewer) is one :meth:`FieldRenderer.render_image`.

The render path's pieces below it: rays (:func:`~mononerf.render.images.prepare_rays`), chunks
(:func:`~mononerf.render.images.render_chunked`), the ray renderers (:mod:`~mononerf.render.renderer`), compositing
split into weights and accumulation (:mod:`~mononerf.render.composite`), and the per-ray maps made from per-sample
outputs (:data:`~mononerf.render.outputs.DERIVED_MAPS`)."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import nn

from mononerf.geometry.cameras import Pinhole
from mononerf.geometry.rays import RayBundle
from mononerf.models.mononerf import MonoNeRF, SceneFeatures
from mononerf.models.projected import Workspace, fold_latent_projections, projection_plan
from mononerf.quirks import Quirks
from mononerf.render.composite import accumulate_along_rays
from mononerf.render.images import batchify_field, prepare_rays, render_chunked
from mononerf.render.outputs import DERIVED_MAPS, PER_RAY_KEYS
from mononerf.render.renderer import render_rays_dynamic, render_rays_static

Cancel = Callable[[], bool]


class RenderCancelled(Exception):
    """A render was abandoned because a newer request arrived (raised between chunks of rays)."""


# projected feature maps kept for renders (the run's, a viewer's scene, an edit's parts): a few entries at most
PROJECTED_CACHE = 4




@dataclass(frozen=True)
class RenderSettings:
    """Per-run render options (method.md §3.1–3.2): samples, jitter, noise, NDC, bounds. Frozen: a render with other
    settings uses :meth:`FieldRenderer.using` (or a renderer of its own), never a change to the shared ones."""

    n_samples: int = 64
    perturb: bool = True
    lindisp: bool = False
    raw_noise_std: float = 1.0
    ndc: bool = True
    near: float = 0.0
    far: float = 1.0
    shared_noise: bool = True
    dynerf_blending: bool = True
    pixel_offset: float = 0.0
    netchunk: int = 1024 * 128
    activation_checkpointing: bool = False

    @classmethod
    def from_conf(cls, cfg, near: float = 0.0, far: float = 1.0, quirks: Quirks | None = None) -> "RenderSettings":
        q = quirks or Quirks.from_conf(cfg)
        return cls(n_samples=int(cfg.train.N_samples), perturb=float(cfg.train.perturb) > 0,
                   lindisp=bool(cfg.train.lindisp), raw_noise_std=float(cfg.train.raw_noise_std),
                   ndc=not bool(cfg.info.no_ndc), near=near, far=far, shared_noise=q.shared_sigma_noise,
                   dynerf_blending=bool(cfg.train.DyNeRF_blending),
                   pixel_offset=0.0 if q.no_half_pixel_offset else 0.5,
                   netchunk=int(cfg.train.netchunk),
                   activation_checkpointing=bool(cfg.run.activation_checkpointing))


class FieldRenderer(nn.Module):
    """Renders rays through :class:`MonoNeRF` with the run's settings (training or test kwargs, method.md §3.1).

    ``features`` (from :meth:`MonoNeRF.encode`) is set once per run and read by every call.
    """

    def __init__(self, model: MonoNeRF, settings: RenderSettings, num_frames: int):
        super().__init__()
        self.model = model
        self.settings = settings
        self.num_frames = num_frames
        self.features: SceneFeatures | None = None
        # the one projected-feature cache of renders: [(features, key, projected features)], newest last
        self._projected: list[tuple] = []
        # the buffers the renders' network calls write their lookups into, kept from one call to the next
        self.workspace = Workspace()

    @contextlib.contextmanager
    def using(self, **changes):
        """Renders inside the block use these settings changed (e.g. ``n_samples=8``); the run's come back after."""
        kept = self.settings
        self.settings = replace(kept, **changes)
        try:
            yield self
        finally:
            self.settings = kept

    def projected(self, points_per_frame: int, feats: SceneFeatures | None = None) -> SceneFeatures:
        """:func:`~mononerf.models.projected.fold_latent_projections` of ``feats`` (default ``self.features``; a
        viewer's one scene, an edit's parts) for renders of ``points_per_frame`` points per scene and frame.

        The render path's one cache: kept from one call to the next while the features object, the weights (every
        parameter's version: an optimiser step or a ``load_state_dict`` changes it) and which maps are worth
        projecting stay the same, so the frames of a video, its chunks, and a viewer's coarse and fine passes
        project each feature map once. A few feature sets at most (:data:`PROJECTED_CACHE`); a training step
        empties it."""
        feats = self.features if feats is None else feats
        key = (projection_plan(self.model, feats, points_per_frame), tuple(p._version for p in self.model.parameters()))
        for n, (kept, kept_key, projected) in enumerate(self._projected):
            if kept is feats:
                if kept_key == key:
                    self._projected.append(self._projected.pop(n))  # most recently used last
                    return projected
                del self._projected[n]  # drop the old maps before making new ones
                break
        projected = fold_latent_projections(self.model, feats, points_per_frame, self.workspace)
        self._projected = self._projected[-(PROJECTED_CACHE - 1):] + [(feats, key, projected)]
        return projected

    def forward(self, rays: RayBundle, t: torch.Tensor, dynamic: bool) -> dict:
        """A training step's render: rays (S, R, 3)×3 in NDC (or world), t (S,) → the renderer's output dict (the
        training settings: jitter, σ noise; the dynamic stage with its t±1 passes). Full images of time t at the
        test settings are :meth:`render_image`'s."""
        s = self.settings
        self._projected = []  # a training step: the renders' projected maps and buffers would only hold memory
        self.workspace.clear()
        common = dict(n_samples=s.n_samples, perturb=s.perturb, lindisp=s.lindisp, raw_noise_std=s.raw_noise_std)
        S = rays.origins.shape[0]

        def field(fn):
            return self.batched(functools.partial(fn, feats=self.features), S,
                                checkpoint=s.activation_checkpointing and dynamic)

        if not dynamic:
            return render_rays_static(rays, s.near, s.far, t, static_fn=field(self.model.query_static), **common)
        return render_rays_dynamic(
            rays, s.near, s.far, t, num_frames=self.num_frames,
            joint_fn=field(self.model.query_joint), dynamic_fn=field(self.model.query_dynamic),
            inference=False, shared_noise=s.shared_noise, dynerf_blending=s.dynerf_blending, **common)

    def render_time(self, rays: RayBundle, near, far, t: torch.Tensor, joint_fn, n_samples: int | None = None) -> dict:
        """Rays at time t alone, test settings (no jitter, no noise, no t±1 passes; method.md §3.6), through a given
        ``joint_fn`` (e.g. one scene's query or an edited field, already batchified): the renderer's output dict."""
        s = self.settings
        return render_rays_dynamic(rays, near, far, t, n_samples=n_samples or s.n_samples, num_frames=self.num_frames,
                                   joint_fn=joint_fn, dynamic_fn=None, perturb=False, lindisp=s.lindisp,
                                   raw_noise_std=0.0, inference=True, shared_noise=s.shared_noise,
                                   dynerf_blending=s.dynerf_blending, neighbour_passes=False)

    def batched(self, fn, scenes: int, checkpoint: bool = False):
        """A field ``fn`` queried in network calls of at most ``netchunk // scenes`` points per scene, as the
        original's batchify (method.md §2.6; :func:`~mononerf.render.images.batchify_field`)."""
        return batchify_field(fn, max(1, self.settings.netchunk // scenes), checkpoint=checkpoint)

    @torch.inference_mode()
    def render_image(self, rays: RayBundle, t: torch.Tensor, *, keys=PER_RAY_KEYS, dynamic: bool = True,
                     feats: SceneFeatures | None = None, joint_fn=None, chunk: int = 1024 * 32,
                     n_samples: int | None = None, cancel: Cancel | None = None,
                     output_device: torch.device | str | None = "cpu") -> dict:
        """The one render path of full images: training pictures, videos, evaluation dumps, edits and the viewer.

        Renders ``rays`` (S, R, 3)×3 (:func:`~mononerf.render.images.prepare_rays`) at times ``t`` (S,) with the test
        settings, ``chunk`` rays per scene at a time, and keeps the per-ray maps ``keys`` (the renderer's own
        outputs, and the maps of :data:`~mononerf.render.outputs.DERIVED_MAPS` made from its per-sample ones).

        Args:
            dynamic: the joint field (static + dynamic); False: the static field alone (the static stage's
                pictures).
            feats: the features to read (default: the run's); their projected maps come from :meth:`projected`.
            joint_fn: a field to render instead of the model's (an edit's composite, already batchified).
            n_samples: samples per ray (default: the settings').
            cancel: polled before each chunk; when it returns True the render stops with :class:`RenderCancelled`.

        Returns:
            dict of (S, R, ...) maps on ``output_device``.
        """
        s = self.settings
        S, R = rays.origins.shape[:2]
        n_samples = int(n_samples or s.n_samples)
        if joint_fn is not None and not dynamic:
            raise ValueError("joint_fn is a joint (static + dynamic) field: it renders with dynamic=True")
        static_fn = None
        if joint_fn is None:
            # the heads' first latent layers applied to each frame's feature maps once (exact; models/projected.py)
            projected = self.projected(R * n_samples, feats)
            if dynamic:
                joint_fn = self.batched(functools.partial(self.model.query_joint, feats=projected), S)
            else:
                static_fn = self.batched(functools.partial(self.model.query_static, feats=projected), S)
        derived = [k for k in keys if k in DERIVED_MAPS] if dynamic else []

        def ray_fn(rays, near, far):
            if cancel is not None and cancel():
                raise RenderCancelled
            if dynamic:
                out = self.render_time(rays, near, far, t, joint_fn, n_samples=n_samples)
            else:
                out = render_rays_static(rays, near, far, t, n_samples=n_samples, static_fn=static_fn, perturb=False,
                                         lindisp=s.lindisp, raw_noise_std=0.0)
            for key in derived:  # e.g. the expected flowed point under the dynamic weights (the induced flow's)
                weights, values = DERIVED_MAPS[key]
                out[key] = accumulate_along_rays(out[weights], out[values])
            return {k: v for k, v in out.items() if k in keys}

        return render_chunked(rays, ray_fn, chunk=chunk, near=s.near, far=s.far, output_device=output_device)

    @torch.inference_mode()
    def render_views(self, c2w: torch.Tensor, t: torch.Tensor, camera: Pinhole, dynamic: bool = True,
                     chunk: int = 1024 * 32, ndc_box: Pinhole | None = None, keys=PER_RAY_KEYS,
                     joint_fn=None) -> dict:
        """Full images: c2w (S, 3, 4), t (S,), the camera's intrinsics (e.g. ``data.camera.downscaled(k)``;
        ``ndc_box``: the scenes' training intrinsics when ``camera`` differs from them in more than its scale) →
        dict of (S, H, W, …) on the CPU: :meth:`render_image` of the camera's pixel rays (``keys``, ``joint_fn``:
        as there)."""
        s = self.settings
        rays_o, rays_d = camera.image_rays(c2w, pixel_offset=s.pixel_offset)  # (S, H, W, 3)
        rays = prepare_rays(rays_o, rays_d, ndc_box or camera, ndc=s.ndc)
        out = self.render_image(rays, t, keys=keys, dynamic=dynamic, chunk=chunk, joint_fn=joint_fn)
        S, (W, H) = c2w.shape[0], camera.size
        return {key: value.reshape((S, H, W) + tuple(value.shape[2:])) for key, value in out.items()}


class GroupedRenderer(nn.Module):
    """The renderers of a run's groups of scenes of one size and length as one module (they share one model), so
    that one DistributedDataParallel wrapper trains them all: ``forward(..., group=g)`` renders with group g's."""

    def __init__(self, renderers: list[FieldRenderer]):
        super().__init__()
        self.parts = nn.ModuleList(renderers)

    def forward(self, rays: RayBundle, t: torch.Tensor, dynamic: bool, group: int = 0) -> dict:
        return self.parts[group](rays, t, dynamic)
