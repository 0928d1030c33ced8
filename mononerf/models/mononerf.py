"""The MonoNeRF model: encoders, velocity-field trajectories, flow-based feature aggregation, two heads (method.md §2).

Use::

    model = MonoNeRF.from_conf(cfg)
    feats = model.encode(images, poses, camera)         # once per run (frozen encoders), method.md §2.3
    raw_s = model.query_static(pts_ref, viewdirs, feats)                 # static pretraining pass
    raw_s, raw_d = model.query_joint(pts_ref, viewdirs, feats)           # main pass at time t
    raw_d = model.query_dynamic(pts_ref, viewdirs, feats)                # t±1 passes

The ``query_*`` methods are the field callbacks of :mod:`mononerf.render.renderer`.
S scenes, T frames, R rays, K samples, P = R·K points per scene.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

import torch
from torch import nn

from mononerf.errors import ConfigError, MonoNeRFError
from mononerf.geometry.cameras import Pinhole
from mononerf.geometry.rays import invert_pose
from mononerf.models.embedder import PositionalEncoding, drop_time_terms
from mononerf.models.encoders import SpatialTemporalEncoder, preprocess_clip
from mononerf.models.features import FeatureVolume, sample_frame_features, standardize_volume, temporal_features
from mononerf.models.heads import DynamicHead, StaticHead
from mononerf.models.projected import ProjectedLatent, ProjectedVolume
from mononerf.models.rows import by_blocks
from mononerf.models.spatial_encoder import SpatialEncoder
from mononerf.models.trajectory import EulerSteps, Integrator, VelocityField, integrator_from_conf
from mononerf.quirks import Quirks
from mononerf.utils.checks import check_shape
from mononerf.utils.host import host_read


@dataclass
class SceneFeatures:
    """What :meth:`MonoNeRF.encode` computes once and every query reads (method.md §2.3).

    Attributes:
        latent: (S, C, T, h, w) SlowOnly features (832 ch for layers [0, 1, 2]), a tensor or a
            :class:`~mononerf.models.features.FeatureVolume` (``run.feature_volume = native``).  latent_scaling: (2,).
        pooled_flow_latent: (S, 2048) average-pooled SlowOnly layer4 (input of the global code).
        latent2d: (S, 512, T, h2, w2) ResNet18 features (tensor or FeatureVolume), or None.
        latent2d_scaling: (2,) or None.
        w2c: (S, T, 3, 4) world-to-camera poses.
        camera: the training images' intrinsics (:class:`~mononerf.geometry.cameras.Pinhole`, per-scene (S,) fields
            or numbers): the NDC box of the scenes and the projection onto their feature maps.
        dynamic_proj, static_proj: the volumes the heads read multiplied by their first latent layers
            (:func:`~mononerf.models.projected.fold_latent_projections`, renders only), or None.
        ndc: these scenes' samples are NDC (False: world); None = the model's ``use_ndc`` (``run.world_rays``).
    """

    latent: torch.Tensor
    latent_scaling: torch.Tensor
    pooled_flow_latent: torch.Tensor
    latent2d: torch.Tensor | None
    latent2d_scaling: torch.Tensor | None
    w2c: torch.Tensor
    camera: Pinhole
    dynamic_proj: ProjectedVolume | None = None
    static_proj: ProjectedVolume | None = None
    ndc: bool | None = None

    @property
    def num_frames(self) -> int:
        return int(self.w2c.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        """(W, H) of the training images."""
        return self.camera.size

    ENCODED = ("latent", "latent_scaling", "pooled_flow_latent", "latent2d", "latent2d_scaling")
    """The encoders' outputs: what depends on the frames and encoder weights, not on the cameras."""

    def detach(self) -> "SceneFeatures":
        """The encoders' outputs detached (cameras kept; projected volumes dropped)."""
        return replace(self, **{k: None if (v := getattr(self, k)) is None else v.detach() for k in self.ENCODED},
                       dynamic_proj=None, static_proj=None)

    def encoded_state(self) -> dict:
        """The encoders' outputs as plain CPU tensors, lists and ints (loadable with ``weights_only=True``): each
        field of :attr:`ENCODED` by its name, a FeatureVolume as ``{name}_levels`` and ``{name}_grid``, a None
        field left out. :meth:`from_encoded_state` makes the features again with the cameras of a scene set."""
        state = {}
        for k in self.ENCODED:
            v = getattr(self, k)
            if isinstance(v, FeatureVolume):
                state[f"{k}_levels"] = [level.detach().cpu() for level in v.levels]
                state[f"{k}_grid"] = list(v.grid)
            elif v is not None:
                state[k] = v.detach().cpu()
        return state

    @classmethod
    def from_encoded_state(cls, state: dict, c2w: torch.Tensor, camera: "Pinhole | torch.Tensor",
                           image_size: tuple[int, int] | None = None) -> "SceneFeatures":
        """Features from :meth:`encoded_state` and the cameras (c2w (S, T, 3, 4); ``camera`` a
        :class:`~mononerf.geometry.cameras.Pinhole`, or a focal (S,) with ``image_size`` (W, H) for the centred
        camera); tensors stay on the device ``state`` was loaded to, volumes in the channels-last layout of a fresh
        encode."""

        def unpack(key):
            if f"{key}_levels" in state:
                return FeatureVolume(state[f"{key}_levels"], tuple(state[f"{key}_grid"]))  # sets its own layouts
            v = state.get(key)
            return None if v is None else v.contiguous(memory_format=torch.channels_last_3d)

        return cls(latent=unpack("latent"), latent_scaling=state["latent_scaling"],
                   pooled_flow_latent=state["pooled_flow_latent"], latent2d=unpack("latent2d"),
                   latent2d_scaling=state.get("latent2d_scaling"), w2c=invert_pose(c2w),
                   camera=Pinhole.of(camera, image_size))

    def select(self, index: "list[int] | torch.Tensor") -> "SceneFeatures":
        """The features of some scenes of a multi-scene encoding, in the given order (index (S',) into S)."""
        idx = torch.as_tensor(index, dtype=torch.long, device=self.latent.device)

        def pick(x):
            return None if x is None else x[idx.to(x.device)]

        return replace(self, latent=pick(self.latent), pooled_flow_latent=pick(self.pooled_flow_latent),
                       latent2d=pick(self.latent2d), w2c=pick(self.w2c), camera=self.camera.select(idx),
                       dynamic_proj=None, static_proj=None)

    def with_video_features(self, source: "SceneFeatures") -> "SceneFeatures":
        """These cameras and image size with ``source``'s video features (what the dynamic branch reads).

        The dynamic branch reads the SlowOnly features ``latent`` (pixel-aligned, along the trajectory) and the
        global code from ``pooled_flow_latent`` (method.md §2.7-2.8); they come from ``source``. Points are projected
        with these poses and intrinsics, so the moving object of ``source`` appears where it is in ``source``'s images.
        """
        if self.latent.shape[0] != source.latent.shape[0]:
            raise ValueError(f"{self.latent.shape[0]} scenes here but {source.latent.shape[0]} in source")
        if self.num_frames != source.num_frames or tuple(self.image_size) != tuple(source.image_size):
            raise MonoNeRFError(f"scenes differ in frames or image size ({self.num_frames} frames "
                                f"{self.image_size} vs {source.num_frames} frames {source.image_size})")
        return replace(self, latent=source.latent, latent_scaling=source.latent_scaling,
                       pooled_flow_latent=source.pooled_flow_latent, dynamic_proj=None)


class MonoNeRF(nn.Module):
    """Generalizable dynamic radiance field (method.md §2).

    Args:
        encoder: SlowOnly video encoder.  encoder2d: the static branch's 2D encoder (None: static uses ``encoder``).
        dynamic: dynamic head.  static: static head.
        multires, multires_views: positional-encoding frequencies (10 and 4 in the original).
        integrator: the trajectory integrator (:data:`~mononerf.models.trajectory.INTEGRATORS`: Euler steps, the
            released configs', or the paper's Neural ODE); None = one Euler step per frame with the quirk of
            ``quirks``.
        use_ndc: sample points are NDC; convert to world before projecting (method.md §2.4).
        feat_guided_flow: condition the velocity field on the global video code.
        use_temporal_feature: gather features at t±1 along the trajectory (flow-based aggregation).
        freeze_enc: encoders are frozen and their features detached (the original's ``info.freeze_enc``).
        standardize_latent, standardize_latent2d: standardise each channel of the video / image encoder's
            pixel-aligned features per scene after encoding (:func:`~mononerf.models.features.standardize_volume`;
            not in the original, ``model.encoder[_2d].standardize_features``, docs/training.md).
        quirks: the original's numerical quirks (:class:`~mononerf.quirks.Quirks`), default all as the original.
    """

    def __init__(self, encoder: SpatialTemporalEncoder, encoder2d: SpatialEncoder | None, dynamic: DynamicHead,
                 static: StaticHead, *, multires: int = 10, multires_views: int = 4,
                 integrator: Integrator | None = None, use_ndc: bool = True,
                 feat_guided_flow: bool = True, use_temporal_feature: bool = True, freeze_enc: bool = True,
                 standardize_latent: bool = False, standardize_latent2d: bool = False, quirks: Quirks | None = None):
        super().__init__()
        self.encoder, self.encoder2d = encoder, encoder2d
        self.mlp_dynamic, self.mlp_static = dynamic, static
        self.embed_pts = PositionalEncoding(4, multires)
        self.embed_views = PositionalEncoding(3, multires_views)
        self.use_ndc, self.feat_guided_flow = use_ndc, feat_guided_flow
        self.use_temporal_feature, self.freeze_enc = use_temporal_feature, freeze_enc
        self.standardize_latent, self.standardize_latent2d = standardize_latent, standardize_latent2d
        self.quirks = quirks or Quirks()
        self.integrator = integrator or EulerSteps(1, self.quirks.discrete_flow_branch_mixup)

    # ------------------------------------------------------------------------------------------------ encode
    def encode(self, images: torch.Tensor, c2w: torch.Tensor, camera: "Pinhole | torch.Tensor") -> SceneFeatures:
        """Run both encoders once over every frame of every scene (method.md §2.1–2.3).

        Args:
            images: (S, T, H, W, 3) RGB in [0, 1].  c2w: (S, T, 3, 4).
            camera: the images' intrinsics (:class:`~mononerf.geometry.cameras.Pinhole`), or a focal (S,): the
                original's centred camera of the images' size.
        """
        check_shape(images, "S T H W 3", "images")
        check_shape(c2w, "S T 3 4", "c2w")
        bn_train = self.quirks.encoder_batchnorm_train
        ctx = torch.no_grad() if self.freeze_enc else torch.enable_grad()
        # frozen encoders keep their BatchNorm buffers: the train-mode BatchNorm of the encode (the original's)
        # would move the running statistics, which nothing reads; kept, a resumed run's state equals an
        # uninterrupted one's and the feature-cache key does not change with each encode
        kept = [(b, b.detach().clone()) for enc in (self.encoder, self.encoder2d) if enc is not None
                for b in enc.buffers()] if self.freeze_enc else []
        with ctx:
            clip = preprocess_clip(images * 255.0, stretch=self.quirks.encoder_clip_stretch)
            out = self.encoder.encode(clip, batchnorm_train=bn_train)
            out2d = self.encoder2d.encode(images, batchnorm_train=bn_train) if self.encoder2d is not None else None
            latent, latent2d = out["latent"], None if out2d is None else out2d["latent"]
            if self.standardize_latent:
                latent = standardize_volume(latent)
            if self.standardize_latent2d and latent2d is not None:
                latent2d = standardize_volume(latent2d)
            for buf, value in kept:
                buf.copy_(value)
        feats = SceneFeatures(
            latent=latent, latent_scaling=out["latent_scaling"],
            pooled_flow_latent=out["flow_latent"].mean(dim=(2, 3, 4)),
            latent2d=latent2d,
            latent2d_scaling=None if out2d is None else out2d["latent_scaling"],
            w2c=invert_pose(c2w), camera=Pinhole.of(camera, (int(images.shape[3]), int(images.shape[2]))),
        )
        return feats.detach() if self.freeze_enc else feats

    # ------------------------------------------------------------------------------------------------ helpers
    def _points(self, pts_ref: torch.Tensor, viewdirs: torch.Tensor, feats: SceneFeatures):
        check_shape(pts_ref, "S R K 4", "pts_ref")
        s, r, k, _ = pts_ref.shape
        xyzt = pts_ref.reshape(s, r * k, 4)
        xyz, t = xyzt[..., :3], xyzt[..., 3]
        emb = self.embed_pts(xyzt)
        views = self.embed_views(viewdirs)[:, :, None, :].expand(s, r, k, -1).reshape(s, r * k, -1)
        tau = (t + 1.0) / 2.0 * feats.num_frames  # continuous frame index (method.md §1.5)
        # one frame per scene, read back to the host once per query: the frame indices choose which maps the
        # lookups read (Python-level choices), and on a GPU each read of a device tensor waits for the device
        with host_read("the frame indices choose the maps the lookups read"):
            frame = torch.ceil(tau[:, 0] - 0.5).long().clamp(0, feats.num_frames - 1).cpu()
        if not self.quirks.neighbour_time_rounding:
            # method.md §8.14: the original's velocity field runs at the continuous time while features are read at the
            # rounded frame; false evaluates the velocity at the rounded frame too
            tau = torch.ceil(tau - 0.5)
        return xyz, tau, frame, emb, views, (s, r, k)

    def _to_world(self, xyz: torch.Tensor, feats: SceneFeatures) -> torch.Tensor:
        if not (self.use_ndc if feats.ndc is None else feats.ndc):
            return xyz
        return feats.camera.ndc_to_world(xyz)

    def _project(self, pts_world: torch.Tensor, frame: torch.Tensor, feats: SceneFeatures) -> torch.Tensor:
        """pts_world (S, P, 3), frame (S,) int → pixels (S, P, 2) in each scene's frame."""
        # per-scene views stacked on the device (an index tensor would be copied from the host)
        w2c = torch.stack([feats.w2c[s, f] for s, f in enumerate(frame.tolist())])
        return feats.camera.project(pts_world, w2c)

    def _static(self, emb, views, uv, frame, feats):
        inject = lat = None
        if feats.static_proj is not None:
            scaling = feats.latent2d_scaling if self.encoder2d is not None else feats.latent_scaling
            inject = ProjectedLatent(self.mlp_static,
                                     sample_frame_features(feats.static_proj, frame, uv, feats.image_size, scaling,
                                                           out=feats.static_proj.lookup_buffer("static", *uv.shape[:2])))
        elif self.encoder2d is not None:
            lat = sample_frame_features(feats.latent2d, frame, uv, feats.image_size, feats.latent2d_scaling)
        else:
            lat = sample_frame_features(feats.latent, frame, uv, feats.image_size, feats.latent_scaling)
        # renders: over blocks of points (models/rows.py)
        return by_blocks(lambda e, v, z, i: self.mlp_static(e, v, z, inject=i), (drop_time_terms(emb), views, lat,
                                                                                  inject))

    def _dynamic(self, xyz, tau, frame, emb, views, uv, feats):
        code = self.mlp_dynamic.global_code(feats.pooled_flow_latent, self.feat_guided_flow)
        n = feats.num_frames

        def trajectory(xyz, tau, code):
            return self.integrator(VelocityField(self.mlp_dynamic, self.embed_pts, n, code), xyz, tau)

        # renders: a pointwise integrator over blocks of points (models/rows.py)
        x_b, x_f = (by_blocks(trajectory, (xyz, tau), (code,)) if getattr(self.integrator, "pointwise", False)
                    else trajectory(xyz, tau, code))
        lat_proj = None
        # frozen encoders: the lookups' results are detached like the original's (its stop_encoder_grad: in the t±1
        # passes the sampling positions depend on the trajectory, and no gradient may reach it through them), so
        # they are made without autograd: the same values, without a graph that holds the maps it read
        lookups = torch.no_grad() if self.freeze_enc else contextlib.nullcontext()
        with lookups:
            if feats.dynamic_proj is not None:
                lat_proj = sample_frame_features(feats.dynamic_proj, frame, uv, feats.image_size, feats.latent_scaling,
                                                 out=feats.dynamic_proj.lookup_buffer("dynamic", *uv.shape[:2]))
                # the raw features at frame t are read only where they stand in for a neighbour outside the video,
                # by temporal_features, straight into its buffer
                latent = None
            else:
                latent = sample_frame_features(feats.latent, frame, uv, feats.image_size, feats.latent_scaling)
        latent_temporal = None
        if self.use_temporal_feature:
            with lookups:
                as_world = self.quirks.temporal_feature_ndc_as_world
                pb = x_b if as_world else self._to_world(x_b, feats)  # quirk temporal_feature_ndc_as_world (docs/quirks.md): NDC points used as world points
                pf = x_f if as_world else self._to_world(x_f, feats)
                uv_b = self._project(pb, (frame - 1).clamp(0, n - 1), feats)
                uv_f = self._project(pf, (frame + 1).clamp(0, n - 1), feats)
                quirk = self.quirks.latent_temporal_reshape
                buf = None  # renders: the workspace's buffer (models/projected.py)
                if feats.dynamic_proj is not None and quirk:
                    buf = feats.dynamic_proj.empty("temporal", (uv.shape[0], feats.latent.shape[1], 2, uv.shape[1]))
                latent_temporal = temporal_features(feats.latent, frame, n, latent, uv_b, uv_f, feats.image_size,
                                                    feats.latent_scaling, quirk, uv=uv, buf=buf)
        # renders with projected maps: the head's latent layers stand-in (models/projected.py)
        inject = None if lat_proj is None else ProjectedLatent(self.mlp_dynamic, lat_proj, latent_temporal)
        return by_blocks(lambda e, v, z, sf, zt, i, c: self.mlp_dynamic(e, v, z, c, sf, zt, inject=i),
                         (emb, views, latent, torch.cat([x_b, x_f], -1), latent_temporal, inject), (code,))

    # ------------------------------------------------------------------------------------------------ queries
    def query_static(self, pts_ref: torch.Tensor, viewdirs: torch.Tensor, feats: SceneFeatures,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """Static branch alone (static pretraining, method.md §4.2): (S, R, K, 4) points+time → (S, R, K, 5).

        Quirk ``random_static_frame`` (method.md §8.7): features come from a random frame per scene per call.
        """
        xyz, _, frame, emb, views, (s, r, k) = self._points(pts_ref, viewdirs, feats)
        if self.quirks.random_static_frame:
            frame = torch.randint(0, feats.num_frames, (s,), generator=generator,
                                  device="cpu" if generator is None else generator.device).to(frame.device)
        uv = self._project(self._to_world(xyz, feats), frame, feats)
        return self._static(emb, views, uv, frame, feats).reshape(s, r, k, -1)

    def query_static_joint(self, pts_ref: torch.Tensor, viewdirs: torch.Tensor, feats: SceneFeatures) -> torch.Tensor:
        """The static branch as :meth:`query_joint` evaluates it (features of the query time's frame), alone:
        (S, R, K, 4) → raw_s (S, R, K, 5), equal to ``query_joint(...)[0]`` without the dynamic branch's cost.

        (:meth:`query_static` is the pretraining pass, which reads a random frame per call, method.md §8.7.)
        """
        xyz, _, frame, emb, views, (s, r, k) = self._points(pts_ref, viewdirs, feats)
        uv = self._project(self._to_world(xyz, feats), frame, feats)
        return self._static(emb, views, uv, frame, feats).reshape(s, r, k, -1)

    def query_joint(self, pts_ref: torch.Tensor, viewdirs: torch.Tensor,
                    feats: SceneFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """Both branches at time t (method.md §2.7): → raw_s (S, R, K, 5), raw_d (S, R, K, 11)."""
        xyz, tau, frame, emb, views, (s, r, k) = self._points(pts_ref, viewdirs, feats)
        uv = self._project(self._to_world(xyz, feats), frame, feats)
        raw_s = self._static(emb, views, uv, frame, feats)
        raw_d = self._dynamic(xyz, tau, frame, emb, views, uv, feats)
        return raw_s.reshape(s, r, k, -1), raw_d.reshape(s, r, k, -1)

    def query_dynamic(self, pts_ref: torch.Tensor, viewdirs: torch.Tensor, feats: SceneFeatures) -> torch.Tensor:
        """Dynamic branch alone (the t±1 passes): → (S, R, K, 11)."""
        xyz, tau, frame, emb, views, (s, r, k) = self._points(pts_ref, viewdirs, feats)
        uv = self._project(self._to_world(xyz, feats), frame, feats)
        return self._dynamic(xyz, tau, frame, emb, views, uv, feats).reshape(s, r, k, -1)

    # ------------------------------------------------------------------------------------------------ factory
    @classmethod
    def from_conf(cls, cfg, quirks: Quirks | None = None) -> "MonoNeRF":
        """Build from the resolved config (``model.*``, ``train.multires*``, ``info.freeze_enc``; ``quirks``, made
        from ``quirks.*`` when not given; the integrator from ``model.mlp_dynamic``: its class reads its settings,
        :func:`~mononerf.models.trajectory.integrator_from_conf`).

        Widths come from the sub-modules (encoder latent sizes, embedding widths), never from the config.
        """
        m, enc_c, dyn_c, sta_c = cfg.model, cfg.model.encoder, cfg.model.mlp_dynamic, cfg.model.mlp_static
        if not dyn_c.pixelnerf_mode:
            raise ConfigError("model.mlp_dynamic.pixelnerf_mode = false (the original's add_features path) is not "
                              "supported; every released config sets it to true")
        if dyn_c.use_layer_norm:
            raise ConfigError("model.mlp_dynamic.use_layer_norm = true is not supported (unused by the original)")
        freeze = bool(cfg.info.freeze_enc)
        native = cfg.run.feature_volume == "native"
        encoder = SpatialTemporalEncoder(num_layers=enc_c.num_layers, impl=enc_c.impl, pretrained=enc_c.pretrained,
                                         pretrained_path=enc_c.pretrained_path, freeze=freeze, native_latent=native)
        encoder2d = None
        if enc_c.use_encoder_2d:
            encoder2d = SpatialEncoder(backbone=m.encoder_2d.type, pretrained=m.encoder_2d.pretrained,
                                       weights_path=m.encoder_2d.weights_path, freeze=freeze, native_latent=native)
        multires, multires_views = int(cfg.train.multires), int(cfg.train.multires_views)
        d_views = 3 * (1 + 2 * multires_views)
        dynamic = DynamicHead(
            d_pts=4 * (1 + 2 * multires), d_views=d_views, d_latent=encoder.latent_size, d_global=256,
            d_flow_latent=encoder.layer_latent_size[4], d_hidden=dyn_c.d_hidden, n_blocks=dyn_c.n_blocks,
            n_global_blocks=dyn_c.n_global_blocks, combine_layer=dyn_c.combine_layer, beta=dyn_c.beta,
            use_viewdirs=dyn_c.use_viewdirsDyn, use_temporal_feature=dyn_c.use_temporal_feature,
            temporal_proportion=dyn_c.temporal_propotion, feature_fuse_mode=dyn_c.feature_fuse_mode,
            zero_features=dyn_c.origin_pipeline, flow_guided_feat=dyn_c.flow_guided_feat, use_spade=dyn_c.use_spade)
        static = StaticHead(
            d_pts=3 * (1 + 2 * multires), d_views=d_views,
            d_latent=(encoder2d or encoder).latent_size, d_hidden=sta_c.d_hidden, n_blocks=sta_c.n_blocks,
            combine_layer=sta_c.combine_layer, beta=sta_c.beta, use_viewdirs=sta_c.use_viewdirs,
            pixelnerf_mode=sta_c.pixelnerf_mode, zero_features=sta_c.origin_pipeline, use_spade=sta_c.use_spade)
        quirks = quirks or Quirks.from_conf(cfg)
        return cls(encoder, encoder2d, dynamic, static, multires=multires, multires_views=multires_views,
                   integrator=integrator_from_conf(dyn_c, quirks), use_ndc=m.use_ndc,
                   feat_guided_flow=m.feat_guided_flow,
                   use_temporal_feature=dyn_c.use_temporal_feature, freeze_enc=freeze,
                   standardize_latent=bool(enc_c.standardize_features),
                   standardize_latent2d=bool(m.encoder_2d.standardize_features),
                   quirks=quirks)
