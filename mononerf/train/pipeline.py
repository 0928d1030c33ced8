"""A run without its training: configuration, scenes, model, encoded features and renderer.

The :class:`~mononerf.train.trainer.Trainer` holds one and adds the optimiser, the schedule and the logging;
rendering, evaluation, editing and the viewer build one from a run folder (:meth:`Pipeline.from_run`) and never a
Trainer (cf. nerfstudio's ``eval_setup``, which returns a pipeline).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from mononerf.data.dataset import MultiSceneDataset, resolve_scene_dirs
from mononerf.errors import ConfigError, MonoNeRFError
from mononerf.models.mononerf import MonoNeRF
from mononerf.quirks import Quirks
from mononerf.train import checkpoint as ckpt
from mononerf.train.distributed import resolve_device
from mononerf.train.feature_cache import encode_cached
from mononerf.train.step import FieldRenderer, RenderSettings


def run_folder(cfg, world_size: int = 1) -> Path:
    """``{basedir}/{W}gpus{expname}``, for adaptation ``[{basename}_]{N}steps_{W}gpus{expname}`` (spec §5.6)."""
    info, train = cfg.info, cfg.train
    name = f"{world_size}gpus{info.expname}"
    if info.fast_render:
        name = f"{int(train.fast_render_iter)}steps_{name}"
        if train.fast_render_basename:
            name = f"{train.fast_render_basename}_{name}"
    return Path(info.basedir) / name


class Pipeline:
    """Scenes, model and renderer of a configuration (features: :meth:`encode`).

    Attributes:
        cfg: the resolved configuration.  device: where data and model live.
        data: the scenes (:class:`~mononerf.data.dataset.MultiSceneDataset`).
        model: :class:`~mononerf.models.mononerf.MonoNeRF`, initialised from ``info.random_seed + rank``.
        renderer: :class:`~mononerf.train.step.FieldRenderer` (model + render settings; ``renderer.features`` after
            :meth:`encode`).
        run_dir: the run folder.  sampler: the ray sampler's RandomState (seeded with the model; training draws
            from it).
    """

    def __init__(self, cfg, device: torch.device | str | None = None, world_size: int = 1, rank: int = 0):
        self.cfg = cfg
        self.device = torch.device(device) if device is not None else resolve_device(cfg.run.device)
        info, train = cfg.info, cfg.train
        self.quirks = Quirks.from_conf(cfg)  # made once, handed to the model, the renderer and the losses
        scene_dirs = resolve_scene_dirs(info.dataset_file_lists, train.datadir)
        if not self.quirks.render_path_neighbour_clamp:
            raise ConfigError("quirks.render_path_neighbour_clamp = false: induced-flow visualisation of render paths "
                              "is not implemented yet, so the quirk has nothing to switch; leave it true")
        pixel_offset = 0.0 if self.quirks.no_half_pixel_offset else 0.5
        self.data = MultiSceneDataset.from_dirs(scene_dirs, device=self.device, pixel_offset=pixel_offset,
                                                scene_format=str(train.dataset_type), factor=int(train.factor),
                                                spherify=bool(train.spherify),
                                                num_novelviews=int(train.num_novelviews),
                                                x_trans_multiplier=float(train.x_trans_multiplier),
                                                y_trans_multiplier=float(train.y_trans_multiplier))
        self.sampler = ckpt.seed_everything(int(info.random_seed) + rank)
        self.model = MonoNeRF.from_conf(cfg, self.quirks).to(self.device)
        ndc = not bool(info.no_ndc)
        near, far = (0.0, 1.0) if ndc else (float(self.data.bds.min()) * 0.9, float(self.data.bds.max()))
        self.renderer = FieldRenderer(self.model, RenderSettings.from_conf(cfg, near, far, self.quirks),
                                      self.data.num_frames)
        self.run_dir = run_folder(cfg, world_size)
        self._read_back: Path | None = None  # the run folder this pipeline was read back from (from_run)

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
        """Both encoders once over every frame of every scene (spec §5.3 step 1), through the on-disk feature cache
        (``run.feature_cache``); the features go to ``renderer.features``. Returns whether they came from the cache."""
        d = self.data
        self.renderer.features, hit = encode_cached(self.model, d.images, d.poses[..., :4], d.focals,
                                                    self.feature_cache_dir())
        return hit

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
        pipeline.run_dir = run_dir  # the folder given, wherever the run was trained (a copied or moved run folder)
        pipeline._read_back = run_dir
        loaded = pipeline.load(path)
        note = loaded.note(path)
        if note:
            print(f"note: {note}", file=sys.stderr)
        pipeline.encode()
        return pipeline, loaded.step
