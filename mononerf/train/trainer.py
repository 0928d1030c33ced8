"""One trainer for the original's three modes (method.md §5): multi-scene training, unseen frames, unseen-scene tuning.

The modes differ only in configuration:

* multi-scene / standard (``train/train.py`` of the original): all frames train, all scenes in one batch;
* unseen frames (``model.unseen_frame_rendering``; the original's quarter-frame script): the dynamic stage draws
  frames ``[0, model.training_frames)``; static pretraining uses every frame (``info.use_unseen_frame_pretrain``);
* unseen-scene adaptation (``info.fast_render`` + ``--ft_path`` + ``--fast_render_iter``): start from a multi-scene
  checkpoint, fine-tune ``fast_render_iter`` static then dynamic steps on the new scene, then render and save.

Stages: static pretraining (``N_static_iters``; static head only, static pixels) then the dynamic stage
(``N_iters``; static head and ResNet18 frozen). Resuming the same command continues from the newest checkpoint with
model, optimiser, iteration and every RNG state, so an interrupted run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import functools
import time
from pathlib import Path
from typing import Callable

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from mononerf.errors import ConfigError
from mononerf.pipeline import checkpoint as ckpt
from mononerf.pipeline.pipeline import DYNAMIC, STATIC, Pipeline
from mononerf.train.distributed import DistInfo
from mononerf.train.images import log_step_images
from mononerf.train.interrupts import StopRequests
from mononerf.train.logger import RunLogger
from mononerf.train.optim import OptimSettings
from mononerf.train.schedule import Schedule, StageState
from mononerf.utils.device import resolve_device


class Trainer:
    """Builds data, model and run folder from a resolved :class:`~mononerf.config.Config` and trains.

    Args:
        cfg: the resolved configuration.
        dist: process/device info (single process on ``cfg.run.device`` when None).
        progress: show a tqdm bar.
        callbacks: ``fn(trainer, stage, iteration, logs)`` called after every step (tests use it).
        run_logging: open the run's text log and tensorboard writer (off for render-only use of a run).
        renders: what makes the periodic full renders of the dynamic stage (``i_testset``, ``i_video``,
            ``i_testset_all``): an object with ``testset``, ``novel_view_time_video`` and ``testset_all``, each
            ``fn(pipeline, step)`` — :mod:`mononerf.eval.renders`, which the training command passes. None: none
            are made (said once when an interval asks for them).
    """

    def __init__(self, cfg, dist: DistInfo | None = None, progress: bool = True,
                 callbacks: list[Callable] | None = None, run_logging: bool = True, renders=None):
        self.cfg = cfg
        self.dist = dist or DistInfo(device=resolve_device(cfg.run.device))
        self.device = self.dist.device
        self.progress = progress and self.dist.is_main
        self.callbacks = list(callbacks or [])
        self._last_saved: tuple[str, int] | None = None  # (stage, step) of the newest checkpoint written
        info, train = cfg.info, cfg.train
        # scenes, model (seeded from info.random_seed + rank), renderer, run folder
        self.pipeline = Pipeline(cfg, self.device, world_size=self.dist.world_size, rank=self.dist.rank)
        self.data, self.model, self.renderer = self.pipeline.data, self.pipeline.model, self.pipeline.renderer
        self.sampler, self.run_dir = self.pipeline.sampler, self.pipeline.run_dir
        S = self.data.num_scenes
        if int(train.batch_size) < S:
            raise ConfigError(f"train.batch_size = {train.batch_size} is less than the {S} scenes: the original then "
                              "trained only the first batch's scenes; here every scene trains in one batch, so set "
                              f"--batch_size {S} (or more) or list fewer scenes")
        # the original's cudnn settings (method.md §5.1): deterministic kernels, no autotuning
        torch.backends.cudnn.deterministic = bool(train.deterministic)
        torch.backends.cudnn.benchmark = not bool(train.deterministic)
        # rays per scene, each group's frames of each stage, the loss weights and flags (checked here, at start-up)
        self.plan = self.pipeline.training_plan()
        self.schedule = Schedule.from_conf(cfg, self.dist.world_size, S)
        unseen = bool(cfg.model.unseen_frame_rendering)
        self.static_pretrain = bool(train.pretrain) and (not unseen or bool(info.use_unseen_frame_pretrain))
        self.logger = RunLogger(self.run_dir, enabled=self.dist.is_main and run_logging)
        self.history: list[tuple[str, int, float]] = []
        self._stops = StopRequests()  # entered by fit(): SIGINT / SIGTERM save and stop
        self.renders = renders
        asked = [k for k in ("i_testset", "i_video", "i_testset_all") if getattr(self.schedule, k) > 0]
        if renders is None and asked and run_logging:
            self.say(f"note: {', '.join('train.' + k for k in asked)} > 0, but this Trainer makes no periodic renders "
                     "(pass renders=mononerf.eval.renders, as the training command does)")

    @property
    def groups(self) -> list:
        """The pipeline's groups of scenes of one size and length (a Trainer renders as its pipeline does)."""
        return self.pipeline.groups

    def say(self, line: str) -> None:
        """A message for the person running it: on the console (main process) and in the run's ``train.log``."""
        if self.dist.is_main:
            tqdm.write(line)
        self.logger.text(line)

    # ------------------------------------------------------------------------------------------------ set-up
    def encode(self) -> None:
        """The pipeline's one-shot encode (through the feature cache, whose stale temporary files go first)."""
        cache = self.pipeline.feature_cache_dir()
        if cache is not None and self.dist.is_main:
            ckpt.remove_stale_temporaries(cache)  # of saves interrupted in earlier runs
        if self.pipeline.encode():
            self.logger.text(f"encoder features loaded from {cache}")

    # ------------------------------------------------------------------------------------------------ resume
    def _resume_plan(self) -> StageState:
        """Where to start (method.md §5.5): --ft_path, the newest readable dynamic/static checkpoint, Pretrained_S, or
        scratch. Our checkpoints and the original's load alike (every tensor checked by name and shape)."""
        train, info = self.cfg.train, self.cfg.info
        if train.ft_path:
            loaded = self._load(train.ft_path)
            if info.fast_render:  # adaptation: fine-tune both stages from step 0 (method.md §5.7)
                self.say(f"loaded {train.ft_path} (step {loaded.step}); adapting from step 0")
                return StageState(STATIC, 0)
            self.say(f"loaded {train.ft_path}; continuing the dynamic stage at step {loaded.step + 1}")
            return StageState(DYNAMIC, loaded.step + 1)
        if not train.no_reload:
            for stage in (DYNAMIC, STATIC):
                path, content, warnings = ckpt.newest_readable(self.run_dir, static=stage == STATIC)
                for line in warnings:
                    self.say(line)
                if path is not None:
                    return self._restore(path, stage, content)
        pre = self._pretrained_static_path()
        if pre is not None:
            loaded = self._load(pre, parts=ckpt.STATIC_PARTS)
            self.say(f"loaded the static branch ({', '.join(ckpt.STATIC_PARTS)}) from {pre}; "
                     "starting the dynamic stage")
            own = pre.resolve().parent == self.run_dir.resolve()  # this run's own: continue its random streams
            state = loaded.checkpoint if own else {}
            return StageState(DYNAMIC, 0, rng=state.get("rng"), stale_grads=state.get("stale_grads"))
        return StageState(STATIC if self.static_pretrain else DYNAMIC, 0)

    def _load(self, path, parts=None, content=None) -> ckpt.Loaded:
        loaded = self.pipeline.load(path, parts=parts, checkpoint=content)
        note = loaded.note(path)
        if note is not None:
            self.say(f"note: {note}")
        return loaded

    def _pretrained_static_path(self) -> Path | None:
        given = self.cfg.info.ft_path_S
        if given not in (None, "None", ""):
            return Path(given)
        path = self.run_dir / ckpt.PRETRAINED_S
        return path if path.is_file() else None

    def _restore(self, path: Path, stage: str, content: dict | None = None) -> StageState:
        loaded = self._load(path, content=content)
        self.say(f"resuming the {stage} stage from {path} (step {loaded.step}; --no_reload starts afresh)")
        state = loaded.checkpoint
        return StageState(stage, loaded.step + 1, state.get("optimizer_state_dict"), state.get("rng"),
                          state.get("stale_grads"))

    def _save(self, stage: str, step: int, optimizer: torch.optim.Optimizer, rng: dict | None = None) -> Path | None:
        """Checkpoint after step ``step``: ``NNNNNN.tar`` (dynamic, the original's name) or ``static_NNNNNN.tar``."""
        if not self.dist.is_main:
            return None
        name = f"{step:06d}.tar" if stage == DYNAMIC else f"static_{step:06d}.tar"
        obj = {"global_step": step, "stage": stage, "network_fn_d_state_dict": self.model.state_dict(),
               "optimizer_state_dict": optimizer.state_dict(), "rng": rng or ckpt.rng_state(self.sampler),
               "config": self.cfg.to_dict()}
        stale = self._stale_grads()
        if stale:
            obj["stale_grads"] = stale
        path = ckpt.save_checkpoint(obj, self.run_dir / name, warn=self.say)
        self._last_saved = (stage, step)
        return path

    # ------------------------------------------------------------------------------------------------ fit
    def fit(self) -> list[tuple[str, int, float]]:
        """Run (or resume) both stages; return the loss history ``[(stage, iteration, loss)]``."""
        if self.dist.is_main:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                self.cfg.save(self.run_dir / "config.conf")
            except OSError as exc:
                raise ckpt.write_error(self.run_dir, exc, "the run folder's config.conf") from None
            for p in ckpt.remove_stale_temporaries(self.run_dir):
                self.say(f"removed {p.name}, the temporary file of a save that was interrupted")
        with self._stops:
            phase = "reading the run's checkpoints"
            try:
                plan = self._resume_plan()
                phase = "encoding the frames (the encoders' one pass)"
                self.encode()
            except KeyboardInterrupt:
                with self._stops.ignored():
                    cached = " (the features are cached when the encoders' pass ends)" \
                        if self.pipeline.feature_cache_dir() else ""
                    self.say(f"\ninterrupted while {phase}, before any training step: nothing was trained in this "
                             f"session; run the same command again to go on{cached}")
                raise
            if plan.stage == STATIC:
                self._run_stage(STATIC, plan)
                if self.dist.is_main and not self.cfg.info.fast_render:
                    self._save_pretrained_static()
                plan = StageState(DYNAMIC, 0)
            self._run_stage(DYNAMIC, plan)
        self.logger.close()
        return self.history

    def _save_pretrained_static(self) -> None:
        keys = {k: v for k, v in self.model.state_dict().items() if any(p in k for p in ckpt.STATIC_PARTS)}
        obj = {"global_step": self.schedule.n_static - 1, "network_fn_d_state_dict": keys,
               "rng": ckpt.rng_state(self.sampler)}
        stale = self._stale_grads()
        if stale:
            obj["stale_grads"] = stale
        ckpt.save_checkpoint(obj, self.run_dir / ckpt.PRETRAINED_S, warn=self.say)

    def _stale_grads(self) -> dict:
        """The static head's gradients from its last step. No optimiser of the dynamic stage owns (or clears) them,
        so they count in its gradient-norm clipping, as in the original; checkpoints keep them and a resumed run
        puts them back, so it clips as an uninterrupted one does."""
        return {f"mlp_static.{n}": p.grad for n, p in self.model.mlp_static.named_parameters() if p.grad is not None}

    def _stage_modules(self, stage: str):
        """Trainable parameters of a stage (method.md §5.2): static head in pretraining, dynamic head afterwards."""
        m = self.model
        static_params = list(m.mlp_static.parameters())
        for p in static_params:
            p.requires_grad_(stage == STATIC)
        for p in m.mlp_dynamic.parameters():
            p.requires_grad_(True)
        params = static_params if stage == STATIC else list(m.mlp_dynamic.parameters())
        return [p for p in params if p.requires_grad]

    def _run_stage(self, stage: str, plan: StageState) -> None:
        n_iters = self.schedule.n_static if stage == STATIC else self.schedule.n_dynamic
        optim = OptimSettings.from_conf(self.cfg, dynamic=stage == DYNAMIC)
        optimizer = optim.build(self.model, self._stage_modules(stage), plan.start)
        if plan.optimizer_state is not None:
            optimizer.load_state_dict(plan.optimizer_state)
        if plan.stale_grads:
            params = dict(self.model.named_parameters())
            for name, grad in plan.stale_grads.items():
                if name in params and params[name].shape == grad.shape:
                    params[name].grad = grad.to(params[name].device)
        if plan.rng is not None:
            ckpt.set_rng_state(plan.rng, self.sampler)
        # one module over every group's renderer (one DDP wrapper for all of them; one group: the run's renderer)
        step_fn = self.pipeline.step_module()
        if self.dist.enabled:
            step_fn = DistributedDataParallel(step_fn, device_ids=[self.device.index]
                                              if self.device.type == "cuda" else None,
                                              find_unused_parameters=True, broadcast_buffers=False)
        bar = tqdm(range(plan.start, n_iters), desc=f"{stage} stage", disable=not self.progress,
                   dynamic_ncols=True, initial=plan.start, total=n_iters)
        completed, rng_at_start = plan.start - 1, None
        try:
            for i in bar:
                rng_at_start = ckpt.rng_state(self.sampler)
                t0 = time.time()
                logs = self._train_step(stage, i, step_fn, optimizer)
                with self._stops.critical():  # a stop request waits until the step and its label agree
                    optimizer.step()
                    optim.after_step(optimizer, i)
                    completed = i
                loss = float(logs["loss"])
                self.history.append((stage, i, loss))
                psnr = float(logs.get("psnr", logs.get("psnr_s", torch.tensor(0.0))))
                bar.set_postfix(loss=f"{loss:.4f}", psnr=f"{psnr:.2f}")
                self._periodic(stage, i, logs, optimizer, time.time() - t0)
                for cb in self.callbacks:
                    cb(self, stage, i, logs)
            if stage == DYNAMIC and completed >= plan.start and self._last_saved != (stage, completed):
                # the last steps are kept: the original saves only at multiples of i_weights, so with N_iters not
                # one more than such a multiple its final steps were in no checkpoint (a run to resume or render)
                self._save(stage, completed, optimizer)
        except KeyboardInterrupt:
            # keep the last completed step; if the interrupted step had started, rewind the RNG to its start
            with self._stops.ignored():
                if completed >= 0 and completed >= plan.start:
                    rng = None if rng_at_start is None or completed == i else rng_at_start
                    path = self._save(stage, completed, optimizer, rng=rng)
                    if path is not None:
                        self.say(f"\ninterrupted: saved {path} ({stage} step {completed}); run the same command "
                                 "again to continue")
                elif self.dist.is_main:
                    self.say(f"\ninterrupted before a {stage} step completed; run the same command again to "
                             "continue")
            raise
        finally:
            bar.close()

    def _train_step(self, stage: str, i: int, step_fn, optimizer) -> dict:
        """One step's batch, render, losses and gradients (``optimizer.step`` is the caller's).

        Scenes of different sizes or lengths: each group of one size and length in turn, its loss weighted by its
        share of the scenes and its gradients accumulated, so that equal groups would give the batch's mean."""
        optimizer.zero_grad(set_to_none=True)
        groups = self.pipeline.groups
        S = self.data.num_scenes
        logs, batches = {}, []
        for g, part in enumerate(groups):
            share = len(part.scene_ids) / S  # 1.0 for one group: every product below is then exact
            # DDP: the gradients of every group but the last accumulate locally; the last backward averages them all
            sync = contextlib.nullcontext() if g == len(groups) - 1 or not self.dist.enabled else step_fn.no_sync()
            with sync:
                total, part_logs, batch = self.pipeline.losses(stage, i, g, functools.partial(step_fn, group=g))
                (total * share).backward()
            for k, v in {**part_logs, "loss": total}.items():
                logs[k] = logs.get(k, 0.0) + v.detach() * share
            batches.append(batch)
        if stage == DYNAMIC and self.cfg.info.use_clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=10.0, norm_type=2.0)
        self._last_batch, self._last_batches = batches[0], batches
        return logs

    # ------------------------------------------------------------------------------------------------ periodic
    def _periodic(self, stage: str, i: int, logs: dict, optimizer, seconds: float) -> None:
        """The original's intervals (method.md §5.4); an interval <= 0 switches that action off."""
        s = self.schedule

        def due(every: int, skip_first: bool = False) -> bool:
            return every > 0 and i % every == 0 and not (skip_first and i == 0)

        if due(s.i_log):
            self.logger.text(f"{stage} step {i}: loss {float(logs['loss']):.5f}, {seconds:.2f}s "
                             + ", ".join(f"{k} {float(v):.4f}" for k, v in sorted(logs.items()) if k != "loss"))
        if due(s.i_print):
            self.logger.scalars(stage, i, logs, optimizer.param_groups[0]["lr"])
        if due(s.i_img):
            self._log_images(stage, i)
        if due(s.i_weights, skip_first=True):
            self._save(stage, i, optimizer)
        if stage != DYNAMIC:
            return
        fast_end = bool(self.cfg.info.fast_render) and i == s.n_dynamic - 1
        if fast_end:
            self._save(stage, i, optimizer)  # adaptation runs end with a checkpoint (docs/decisions.md fix of §8.24)
        if not self.dist.is_main or self.renders is None:
            return
        if due(s.i_testset, skip_first=True) or (fast_end and s.i_testset > 0):
            self.renders.testset(self.pipeline, i)
        if due(s.i_video, skip_first=True):
            self.renders.novel_view_time_video(self.pipeline, i)
        if self.cfg.info.testset_all and (due(s.i_testset_all, skip_first=True) or (fast_end and s.i_testset_all > 0)):
            self.renders.testset_all(self.pipeline, i)

    def _log_images(self, stage: str, i: int) -> None:
        if self.dist.is_main and self.logger.writer is not None:
            log_step_images(self.pipeline, self._last_batches, self.logger, stage, i,
                            int(self.cfg.train.i_img_downscale), int(self.cfg.info.chunk))
