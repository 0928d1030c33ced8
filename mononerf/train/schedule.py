"""The trainer's schedule (iteration counts and intervals after the original's adjustments) and where a stage
starts (method.md §5.1, §5.4, §5.5)."""

from __future__ import annotations

from dataclasses import dataclass

from mononerf.errors import ConfigError


@dataclass
class Schedule:
    """Iteration counts and logging intervals after the original's adjustments (method.md §5.1, §5.4)."""

    n_static: int
    n_dynamic: int
    i_print: int
    i_log: int
    i_img: int
    i_weights: int
    i_testset: int
    i_video: int
    i_testset_all: int
    fast_render_iter: int = 0

    @classmethod
    def from_conf(cls, cfg, world_size: int, num_scenes: int) -> "Schedule":
        t = cfg.train
        div = max(1, min(world_size // num_scenes, 2))  # the original's multi-GPU iteration scaling
        s = cls(n_static=t.N_static_iters, n_dynamic=t.N_iters // div, i_print=t.i_print, i_log=t.i_log,
                i_img=t.i_img, i_weights=t.i_weights, i_testset=t.i_testset // div, i_video=t.i_video // div,
                i_testset_all=t.i_testset_all)
        if cfg.info.fast_render:
            it = int(t.fast_render_iter)
            if it <= 0:
                raise ConfigError("info.fast_render is set: give --fast_render_iter=N (N > 0 adaptation steps)")
            s.fast_render_iter = s.n_static = s.n_dynamic = it
            # the original renders at the last step; an interval configured as 0 stays off
            s.i_video, s.i_testset, s.i_testset_all = (it - 1 if v > 0 else 0
                                                       for v in (s.i_video, s.i_testset, s.i_testset_all))
        return s


@dataclass
class StageState:
    stage: str
    start: int
    optimizer_state: dict | None = None
    rng: dict | None = None
    stale_grads: dict | None = None
