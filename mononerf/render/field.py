"""The model plus its render settings as one module, so a training step is one ``forward`` (and DDP can wrap it)."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, replace

import torch
from torch import nn

from mononerf.geometry.cameras import Pinhole
from mononerf.geometry.rays import RayBundle
from mononerf.models.mononerf import MonoNeRF, SceneFeatures
from mononerf.models.projected import fold_latent_projections
from mononerf.quirks import Quirks
from mononerf.render.images import batchify_field, render_full_image
from mononerf.render.outputs import PER_RAY_KEYS
from mononerf.render.renderer import render_rays_dynamic, render_rays_static




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
        self._render_feats: tuple | None = None  # (features, key, inference features) of the last render

    @contextlib.contextmanager
    def using(self, **changes):
        """Renders inside the block use these settings changed (e.g. ``n_samples=8``); the run's come back after."""
        kept = self.settings
        self.settings = replace(kept, **changes)
        try:
            yield self
        finally:
            self.settings = kept

    def render_features(self, points_per_frame: int) -> SceneFeatures:
        """:func:`~mononerf.models.projected.fold_latent_projections` of ``self.features`` for renders of
        ``points_per_frame`` points per scene and frame, kept from one call to the next while the features, the
        weights (every parameter's version: an optimiser step or a ``load_state_dict`` changes it) and the size stay
        the same: the frames of a video at one time, and its chunks, project and resize each feature map once."""
        key = (points_per_frame, tuple(p._version for p in self.model.parameters()))
        kept = self._render_feats
        if kept is None or kept[0] is not self.features or kept[1] != key:
            self._render_feats = None  # drop the old maps before making new ones
            projected = fold_latent_projections(self.model, self.features, points_per_frame)
            kept = self._render_feats = (self.features, key, projected)
        return kept[2]

    def forward(self, rays: RayBundle, t: torch.Tensor, dynamic: bool, test: bool = False,
                neighbour_passes: bool = True, feats: SceneFeatures | None = None) -> dict:
        """rays (S, R, 3)×3 in NDC (or world), t (S,) → the renderer's output dict.

        ``test`` uses the original's test kwargs: no perturbation, no noise, inference outputs.
        ``neighbour_passes=False`` skips the t±1 re-renders (not needed for images of time t).
        ``feats``: features to read instead of ``self.features`` (e.g.
        :func:`~mononerf.models.projected.fold_latent_projections`).
        """
        s = self.settings
        if not torch.is_inference_mode_enabled():
            self._render_feats = None  # a training step: the last render's projected maps would only hold memory
        feats = self.features if feats is None else feats
        common = dict(n_samples=s.n_samples, perturb=s.perturb and not test, lindisp=s.lindisp,
                      raw_noise_std=0.0 if test else s.raw_noise_std)
        # network calls of at most netchunk // S points per scene, as the original's batchify (method.md §2.6)
        per_call = max(1, s.netchunk // rays.origins.shape[0])

        def field(fn):
            return batchify_field(functools.partial(fn, feats=feats), per_call,
                                  checkpoint=s.activation_checkpointing and dynamic and not test)

        if not dynamic:
            return render_rays_static(rays, s.near, s.far, t, static_fn=field(self.model.query_static), **common)
        return render_rays_dynamic(
            rays, s.near, s.far, t, num_frames=self.num_frames,
            joint_fn=field(self.model.query_joint), dynamic_fn=field(self.model.query_dynamic),
            inference=test, shared_noise=s.shared_noise, dynerf_blending=s.dynerf_blending,
            neighbour_passes=neighbour_passes, **common)

    def render_time(self, rays: RayBundle, near, far, t: torch.Tensor, joint_fn, n_samples: int | None = None) -> dict:
        """Rays at time t alone, test settings (no jitter, no noise, no t±1 passes; method.md §3.6), through a given
        ``joint_fn`` (e.g. one scene's query or an edited field, already batchified): the renderer's output dict."""
        s = self.settings
        return render_rays_dynamic(rays, near, far, t, n_samples=n_samples or s.n_samples, num_frames=self.num_frames,
                                   joint_fn=joint_fn, dynamic_fn=None, perturb=False, lindisp=s.lindisp,
                                   raw_noise_std=0.0, inference=True, shared_noise=s.shared_noise,
                                   dynerf_blending=s.dynerf_blending, neighbour_passes=False)

    @torch.inference_mode()
    def render_views(self, c2w: torch.Tensor, t: torch.Tensor, camera: Pinhole, dynamic: bool = True,
                     chunk: int = 1024 * 32, ndc_box: Pinhole | None = None) -> dict:
        """Full images: c2w (S, 3, 4), t (S,), the camera's intrinsics (e.g. ``data.camera.downscaled(k)``; ``ndc_box``
        as :func:`~mononerf.render.images.render_full_image`) → dict of (S, H, W, …) on the CPU (test kwargs)."""
        s = self.settings
        width, height = camera.size
        # the heads' first latent layers applied to each frame's feature maps once (exact; see models/projected.py)
        feats = self.render_features(height * width * s.n_samples)

        def ray_fn(rays, near, far):
            out = self.forward(rays, t, dynamic=dynamic, test=True, neighbour_passes=False, feats=feats)
            if dynamic:  # expected flowed positions under the current dynamic weights (method.md §3.5), per ray
                w = out["weights_d"][..., None]
                out["expected_pts_f"] = (w * out["raw_pts_f"]).sum(-2)
                out["expected_pts_b"] = (w * out["raw_pts_b"]).sum(-2)
                out["sceneflow_map_f"] = (w * out["sceneflow_f"]).sum(-2)  # forward scene flow, composited
            return {k: v for k, v in out.items() if k in PER_RAY_KEYS}

        return render_full_image(c2w, camera, ray_fn, chunk=chunk, ndc=s.ndc, near=s.near, far=s.far,
                                 pixel_offset=s.pixel_offset, output_device="cpu", ndc_box=ndc_box)


class GroupedRenderer(nn.Module):
    """The renderers of a run's groups of scenes of one size and length as one module (they share one model), so
    that one DistributedDataParallel wrapper trains them all: ``forward(..., group=g)`` renders with group g's."""

    def __init__(self, renderers: list[FieldRenderer]):
        super().__init__()
        self.parts = nn.ModuleList(renderers)

    def forward(self, rays: RayBundle, t: torch.Tensor, dynamic: bool, group: int = 0) -> dict:
        return self.parts[group](rays, t, dynamic)
