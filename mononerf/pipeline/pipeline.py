"""A run without its training: configuration, scenes, model, encoded features and renderer.

The :class:`~mononerf.train.trainer.Trainer` holds one and adds the optimiser, the schedule and the logging;
rendering, evaluation, editing and the viewer build one from a run folder (:meth:`Pipeline.from_run`) and never a
Trainer (cf. nerfstudio's ``eval_setup``, which returns a pipeline).
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from pathlib import Path

from dataclasses import dataclass, replace

import numpy as np
import torch

from mononerf.data.dataset import RayBatch, SceneGroups, load_scenes, resolve_scene_dirs, split_frames
from mononerf.data.formats import read_scenes
from mononerf.errors import ConfigError, MonoNeRFError
from mononerf.losses import LossFlags, LossWeights, dynamic_stage_losses, loss_weights, static_stage_loss
from mononerf.models.mononerf import MonoNeRF
from mononerf.pipeline import checkpoint as ckpt
from mononerf.pipeline.feature_cache import encode_cached
from mononerf.quirks import Quirks
from mononerf.render.field import FieldRenderer, GroupedRenderer, RenderSettings
from mononerf.render.images import prepare_rays
from mononerf.utils.block_cache import keep_freed_blocks
from mononerf.utils.cpu import flush_denormals
from mononerf.utils.device import resolve_device
from mononerf.utils.host import host_read

STATIC, DYNAMIC = "static", "dynamic"  # the two training stages (Pipeline.losses)


def run_folder(cfg, world_size: int = 1) -> Path:
    """``{basedir}/{W}gpus{expname}``, for adaptation ``[{basename}_]{N}steps_{W}gpus{expname}`` (method.md §5.6)."""
    info, train = cfg.info, cfg.train
    name = f"{world_size}gpus{info.expname}"
    if info.fast_render:
        name = f"{int(train.fast_render_iter)}steps_{name}"
        if train.fast_render_basename:
            name = f"{train.fast_render_basename}_{name}"
    return Path(info.basedir) / name


def world_rays(cfg, scenes) -> list[bool]:
    """Per scene: whether it samples in world space (True) or in NDC. ``run.world_rays = run``: every scene as
    ``info.no_ndc`` says (the original); ``auto``: the scenes that are not forward-facing
    (:attr:`Scene.forward_facing <mononerf.data.scene.Scene.forward_facing>`) take world rays."""
    if bool(cfg.info.no_ndc) or str(cfg.run.world_rays) == "run":
        return [bool(cfg.info.no_ndc)] * len(scenes)
    return [not s.forward_facing for s in scenes]


@dataclass(frozen=True)
class TrainingPlan:
    """What a training step of a run draws and weighs (:meth:`Pipeline.training_plan`).

    Attributes:
        n_rand: rays per scene per step (``info.N_rand // S``).
        frames: per group of scenes of one length, (dynamic-stage frames, held-out frames, static-stage frames).
        weights: the λ of every loss term (``loss_weights(cfg)``).
        flags: per group, which loss terms run (:class:`~mononerf.losses.weights.LossFlags`; NDC or world per group).
    """

    n_rand: int
    frames: list
    weights: LossWeights
    flags: list


class Pipeline:
    """Scenes, model and renderer of a configuration (features: :meth:`encode`).

    Attributes:
        cfg: the resolved configuration.  device: where data and model live.
        data: the scenes (:class:`~mononerf.data.dataset.MultiSceneDataset`; for scenes of different sizes or
            lengths :class:`~mononerf.data.dataset.SceneGroups`).
        model: :class:`~mononerf.models.mononerf.MonoNeRF`, initialised from ``info.random_seed + rank``.
        renderer: :class:`~mononerf.render.field.FieldRenderer` (model + render settings; ``renderer.features`` after
            :meth:`encode`).
        groups: the pipeline per group of scenes of one size and length: ``[self]`` when every scene matches,
            else shallow copies sharing the model, each with its group's ``data``, ``renderer`` and features.
            ``scene_ids``: the run's indices of the pipeline's scenes.
        run_dir: the run folder.  sampler: the ray sampler's RandomState (seeded with the model; training draws
            from it).
    """

    def __init__(self, cfg, device: torch.device | str | None = None, world_size: int = 1, rank: int = 0):
        self.cfg = cfg
        self.device = torch.device(device) if device is not None else resolve_device(cfg.run.device)
        info, train = cfg.info, cfg.train
        self.quirks = Quirks.from_conf(cfg)  # made once, handed to the model, the renderer and the losses
        # process-wide: each pipeline sets its run's arithmetic
        if not flush_denormals(bool(cfg.run.flush_denormal)) and cfg.run.flush_denormal:
            print("note: run.flush_denormal: this CPU or PyTorch build could not flush denormal numbers on every "
                  "thread (no FTZ mode, or no GNU OpenMP pool); training may slow down as the run goes on",
                  file=sys.stderr)
        if self.device.type == "cpu":
            reason = keep_freed_blocks(bool(cfg.run.keep_freed_memory))
            if reason is not None:
                print(f"note: run.keep_freed_memory: {reason}; freed memory goes back to the system as usual "
                      "(run.keep_freed_memory=false silences this)", file=sys.stderr)
        scene_dirs = resolve_scene_dirs(info.dataset_file_lists, train.datadir)
        pixel_offset = 0.0 if self.quirks.no_half_pixel_offset else 0.5
        scenes = read_scenes(scene_dirs, str(train.dataset_type), factor=int(train.factor),
                             spherify=bool(train.spherify), num_novelviews=int(train.num_novelviews),
                             x_trans_multiplier=float(train.x_trans_multiplier),
                             y_trans_multiplier=float(train.y_trans_multiplier))
        world = world_rays(cfg, scenes)  # per scene: world-space rays (True) or NDC
        self.data = load_scenes(scenes, device=self.device, pixel_offset=pixel_offset, keys=world)
        self.sampler = ckpt.seed_everything(int(info.random_seed) + rank)
        self.model = MonoNeRF.from_conf(cfg, self.quirks).to(self.device)
        # NDC: [0, 1]; world space: the bounds of every world-space scene, as the original's stacked scenes
        ndc_settings = replace(RenderSettings.from_conf(cfg, 0.0, 1.0, self.quirks), ndc=True)
        settings = ndc_settings
        if any(world):
            bds = np.concatenate([np.asarray(s.bds).reshape(-1) for s, w in zip(scenes, world) if w])
            settings = replace(settings, ndc=False, near=float(bds.min()) * 0.9, far=float(bds.max()))
        self.run_dir = run_folder(cfg, world_size)
        self._read_back: Path | None = None  # the run folder this pipeline was read back from (from_run)
        self.scene_ids = list(range(len(scenes)))
        if isinstance(self.data, SceneGroups):
            self.groups = [self._group(data, idx, settings if world[idx[0]] else ndc_settings)
                           for data, idx in zip(self.data.groups, self.data.indices)]
            self.renderer = self.groups[0].renderer  # its settings are every group's (Pipeline.using changes all)
        else:
            self.renderer = FieldRenderer(self.model, settings, self.data.num_frames)
            self.groups = [self]

    def _group(self, data, scene_ids: list[int], settings: RenderSettings) -> "Pipeline":
        part = copy.copy(self)
        part.data, part.scene_ids = data, list(scene_ids)
        part.renderer = FieldRenderer(self.model, settings, data.num_frames)
        part.groups = [part]
        return part

    def training_plan(self) -> TrainingPlan:
        """The run's :class:`TrainingPlan`, made once (its checks raise ConfigError: too few rays per scene, a frame
        split that does not fit a scene's length)."""
        if getattr(self, "_plan", None) is None:
            cfg, S = self.cfg, self.data.num_scenes
            n_rand = int(cfg.info.N_rand) // S
            if n_rand < 2:
                raise ConfigError(f"info.N_rand = {cfg.info.N_rand} gives {n_rand} rays per scene for {S} scenes")
            unseen, every = bool(cfg.model.unseen_frame_rendering), int(cfg.model.held_out_every)
            frames = []
            for part in self.groups:
                T = part.data.num_frames
                try:
                    dyn, held = split_frames(T, int(cfg.model.training_frames) if unseen else None, every)
                except ValueError as err:
                    raise ConfigError(f"{', '.join(part.data.names)}: {err}") from None
                # held out every N-th frame: out of the static stage too (the unseen-frames mode pretrains on every
                # frame)
                frames.append((dyn, held, dyn if every > 1 else np.arange(T)))
            flags = [replace(LossFlags.from_conf(cfg, num_frames=part.data.num_frames),  # NDC or world: per group
                             ndc=part.renderer.settings.ndc) for part in self.groups]
            self._plan = TrainingPlan(n_rand, frames, loss_weights(cfg), flags)
        return self._plan

    def losses(self, stage: str, step: int, group: int, render) -> tuple[torch.Tensor, dict, RayBatch]:
        """One training step's loss of group ``group``'s scenes (nerfstudio's ``get_train_loss_dict``): its rays drawn
        with the run's sampler, rendered by ``render(rays, time, dynamic)`` (the step module of the group), and the
        stage's loss terms (``stage``: "static" or "dynamic", ``step`` the stage's iteration). Returns (total, the
        logged terms, the batch). A non-finite total stops the run (MonoNeRFError)."""
        plan, cfg = self.training_plan(), self.cfg
        dynamic = stage == DYNAMIC
        part = self.groups[group]
        d = part.data
        batch = d.sample_rays(self.sampler, plan.n_rand, plan.frames[group][0 if dynamic else 2], stage=stage)
        if cfg.info.without_time:
            batch.time = torch.zeros_like(batch.time)
        rays = prepare_rays(batch.rays_o, batch.rays_d, d.camera, ndc=part.renderer.settings.ndc)
        outputs = render(rays, batch.time, dynamic)
        if dynamic:
            total, logs = dynamic_stage_losses(
                outputs, batch, c2w_all=d.poses[..., :4], camera=d.camera, num_frames=d.num_frames,
                num_static=batch.num_static, weights=plan.weights, flags=plan.flags[group], quirks=self.quirks,
                iteration=step, train_blending=step >= int(cfg.train.blending_warmup))
        else:
            total, logs = static_stage_loss(outputs, batch, float(cfg.train.static_loss_lambda))
        with host_read("a non-finite loss stops the run"):
            finite = bool(torch.isfinite(total))
        if not finite:
            raise MonoNeRFError(f"{stage} stage, iteration {step}: the loss is {float(total.detach())}; stopping (the "
                                f"newest checkpoint in {self.run_dir} is kept; lower train.lrate or resume from it)")
        return total, logs, batch

    def step_module(self) -> GroupedRenderer:
        """What a training step renders through: every group's renderer as one module (one DDP wrapper trains them
        all; ``module(rays, t, dynamic, group=g)``)."""
        return GroupedRenderer([part.renderer for part in self.groups])

    @property
    def mixed(self) -> bool:
        """Scenes of different sizes or lengths (more than one group)."""
        return len(self.groups) > 1

    def for_scene(self, b: int) -> tuple["Pipeline", int]:
        """(the pipeline of the group holding the run's scene ``b``, its index there)."""
        for part in self.groups:
            if b in part.scene_ids:
                return part, part.scene_ids.index(b)
        raise MonoNeRFError(f"scene {b} is not in this run (0..{len(self.scene_ids) - 1})")

    def select(self, indices: list[int]) -> "Pipeline":
        """A view that renders only the run's scenes ``indices``, in that order (numbered 0.. in it): shallow copies
        sharing the model and settings, with those scenes' data and features, grouped by size and length."""
        view = copy.copy(self)
        parts = []
        for part in self.groups:
            mine = [(pos, part.scene_ids.index(b)) for pos, b in enumerate(indices) if b in part.scene_ids]
            if not mine:
                continue
            local = [j for _, j in mine]
            sub = copy.copy(part)
            sub.data = part.data.subset(local)
            sub.renderer = FieldRenderer(self.model, part.renderer.settings, part.data.num_frames)
            if part.renderer.features is not None:
                sub.renderer.features = part.renderer.features.select(local)
            sub.scene_ids, sub.groups = [pos for pos, _ in mine], [sub]
            parts.append(sub)
        if len(parts) == 1:
            return parts[0]
        view.groups, view.renderer, view.scene_ids = parts, parts[0].renderer, list(range(len(indices)))
        view.data = SceneGroups([self.data.scenes[b] for b in indices], self.device, self.data.pixel_offset,
                                groups=[p.data for p in parts], indices=[p.scene_ids for p in parts])
        return view

    @contextlib.contextmanager
    def using(self, **changes):
        """Every group renders inside the block with these settings changed (:meth:`FieldRenderer.using`)."""
        with contextlib.ExitStack() as stack:
            for part in self.groups:
                stack.enter_context(part.renderer.using(**changes))
            yield self

    # ------------------------------------------------------------------------------------------------ features
    def feature_cache_dir(self) -> str | None:
        """``run.feature_cache`` with ``{basedir}`` filled in (None: no cache). A pipeline read back from a run folder
        (:meth:`from_run`) writes only beside that folder: ``{basedir}`` is the run folder's parent, and a cache
        elsewhere is replaced by ``{the run folder's parent}/feature_cache``, with a note."""
        cache = self.cfg.run.feature_cache
        if cache is None:
            return None
        if self._read_back is None:
            return cache.replace("{basedir}", str(self.cfg.info.basedir).rstrip("/"))
        base = self._read_back.parent
        resolved = Path(cache.replace("{basedir}", str(base)))
        if os.path.commonpath([resolved.resolve(), base.resolve()]) != str(base.resolve()):
            fallback = base / "feature_cache"
            print(f"note: {self._read_back / 'config.conf'} puts the feature cache at {resolved}, outside "
                  f"{base}; using {fallback} (a run folder's config writes only beside the run folder)",
                  file=sys.stderr)
            return str(fallback)
        return str(resolved)

    def encode(self) -> bool:
        """Both encoders once over every frame of every scene (method.md §5.3 step 1), through the on-disk feature cache
        (``run.feature_cache``); the features go to ``renderer.features`` (each group's). Returns whether they all came
        from the cache."""
        hits = []
        for part in self.groups:
            d = part.data
            feats, hit = encode_cached(self.model, d.images, d.poses[..., :4], d.camera, self.feature_cache_dir())
            part.renderer.features = replace(feats, ndc=part.renderer.settings.ndc)  # the group's sample space
            hits.append(hit)
        return all(hits)

    # ------------------------------------------------------------------------------------------------ runs
    def load(self, path: str | os.PathLike, parts: tuple[str, ...] | None = None,
             checkpoint: dict | None = None) -> ckpt.Loaded:
        """A checkpoint's weights (ours or the original's; every tensor checked) into the model."""
        return ckpt.load_weights(self.model, path, parts=parts, checkpoint=checkpoint)

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, device: str = "auto",
                 checkpoint: str | None = None) -> tuple["Pipeline", int]:
        """The pipeline of a run folder: ``RUN_DIR/config.conf``, the newest (or the given) checkpoint loaded and
        the features encoded (or read from the feature cache). Returns (pipeline, the checkpoint's step)."""
        from mononerf.config import parse_config_file

        run_dir = Path(run_dir)
        conf = run_dir / "config.conf"
        if run_dir.is_file():
            hint = f" (to use this checkpoint: RUN_DIR --checkpoint {run_dir})" if run_dir.suffix == ".tar" else ""
            raise MonoNeRFError(f"{run_dir}: is a file, not a run folder{hint}")
        if not conf.is_file():
            raise MonoNeRFError(f"{run_dir}: not a run folder (no config.conf)")
        path = Path(checkpoint) if checkpoint else ckpt.latest_dynamic(run_dir)
        if path is None:
            raise MonoNeRFError(f"{run_dir}: no checkpoint NNNNNN.tar of the dynamic stage yet")
        # a run folder's config.conf is the resolved config: an include there is refused (docs/security.md)
        pipeline = cls(parse_config_file(str(conf), [f"run.device={device}"], includes=False))
        for part in {id(p): p for p in [pipeline, *pipeline.groups]}.values():
            part.run_dir = run_dir  # the folder given, wherever the run was trained (a copied or moved run folder)
            part._read_back = run_dir
        loaded = pipeline.load(path)
        note = loaded.note(path)
        if note:
            print(f"note: {note}", file=sys.stderr)
        pipeline.encode()
        return pipeline, loaded.step
