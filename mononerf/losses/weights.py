"""Weights, gates and schedules of the loss terms (method.md §4.3 "weight" column, lambda decay, blending warm-up)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mononerf.config.schema import KEYS, REQUIRED


@dataclass(frozen=True)
class Weight:
    """How the total weighs one loss-dict key (method.md §4.3 "weight" column); a :class:`~mononerf.losses.total.Term`
    declares one per weighted key, and a key without one is logged only.

    Attributes:
        key: config key of the λ, e.g. ``"train.depth_loss_lambda"``; None = a fixed weight of 1.
        fallback: config key whose λ stands in where ``key`` is null (``info.mask_flow_loss_lambda``).
        without_pretrain: config key of the λ with ``flags.use_unseen_frame_pretrain = False`` (img_d_loss).
        schedule: ``""`` always; ``"decay"`` times Temp (:func:`flow_temperature`); ``"window"`` counts only while
            :func:`mask_losses_active`.
        blending: ``""`` always; ``"trains"`` = the term trains the blending weight and is left out of a blending
            warm-up step (``train.blending_warmup``); ``"warmup"`` = counts only in those steps.
    """

    key: str | None
    fallback: str | None = None
    without_pretrain: str | None = None
    schedule: str = ""
    blending: str = ""

    def __post_init__(self) -> None:
        if self.schedule not in ("", "decay", "window") or self.blending not in ("", "trains", "warmup"):
            raise ValueError(f"unknown schedule {self.schedule!r} or blending {self.blending!r} in {self}")

    def keys(self) -> tuple[str, ...]:
        """The config keys this weight may read."""
        return tuple(k for k in (self.key, self.fallback, self.without_pretrain) if k is not None)

    def value(self, lambdas: "LossWeights", flags: "LossFlags", *, temperature: float, mask_on: bool,
              train_blending: bool) -> float | None:
        """The weight at this step, or None where the key does not count."""
        if (self.blending == "trains" and not train_blending) or (self.blending == "warmup" and train_blending):
            return None
        if self.schedule == "window" and not mask_on:
            return None
        key = self.key if flags.use_unseen_frame_pretrain or self.without_pretrain is None else self.without_pretrain
        if key is None:
            return 1.0
        lam = lambdas[key]
        if lam is None and self.fallback is not None:
            lam = lambdas[self.fallback]
        if lam is None:
            raise ValueError(f"{key} is null and has no fallback")
        return lam * temperature if self.schedule == "decay" else float(lam)


@dataclass(frozen=True)
class LossWeights:
    """The λ of the weighted terms, by config key (method.md §4.3 table; defaults = the original's command-line
    defaults, from the key table). :data:`~mononerf.losses.total.WEIGHT_KEYS` lists the keys the terms read.

    Attributes:
        values: ``{config key: λ}``; a null λ (``info.mask_flow_loss_lambda``) is None.
    """

    values: Mapping[str, float | None]

    def __getitem__(self, key: str) -> float | None:
        if key not in self.values:
            raise KeyError(f"no loss weight {key} (known: {', '.join(self.values)})")
        return self.values[key]

    @classmethod
    def from_conf(cls, cfg, keys: Iterable[str]) -> "LossWeights":
        """Read ``keys`` (dotted config keys) from the resolved config."""
        return cls({k: None if cfg[k] is None else float(cfg[k]) for k in keys})

    @classmethod
    def defaults(cls, keys: Iterable[str]) -> "LossWeights":
        """The defaults of ``keys`` (an ``info.*`` key the conf must give: its command-line default)."""
        out = {}
        for k in keys:
            key = KEYS[k]
            out[k] = key.cli_default if key.default is REQUIRED else key.default
        return cls(out)


@dataclass
class LossFlags:
    """Gates and settings of the dynamic-stage terms (method.md §4.3; defaults = the original's code defaults).

    Attributes:
        use_feat_consistency: #4-5 (``info.use_feat_consistency``).
        use_flow: #6-11 (``info.use_flow``).
        use_depth_blending_loss: #14 (``info.use_depth_blending_loss``).
        use_static_flow_loss: #15 (``info.use_static_flow_loss``).
        use_mask_flow_loss: #16 (``info.use_mask_flow_loss``).
        use_lambda_decay: Temp = 10^-(step // (decay_iteration·1000)) on #6-7, and #12 / #16 stop counting from
            step decay_iteration·1000 on (``info.use_lambda_decay``).
        decay_iteration: the decay period in thousands of steps; None = max(25, T) (``info.decay_iteration``).
        blending_thickness: band of #14 in NDC depth (``info.blending_thickness``).
        ndc: samples are NDC (``not info.no_ndc``); False selects the original's ``_wo_ndc`` variants of #6-7,
            #9, #10, #19.
        use_unseen_frame_pretrain: False only in unseen-frames mode with ``info.use_unseen_frame_pretrain =
            false`` (method.md §1.6, §5.8): no img_s / img losses, and img_d is weighted by ``full``.
    """

    use_feat_consistency: bool = True
    use_flow: bool = True
    use_depth_blending_loss: bool = False
    use_static_flow_loss: bool = False
    use_mask_flow_loss: bool = False
    use_lambda_decay: bool = False
    decay_iteration: int | None = None
    blending_thickness: float = 0.06
    ndc: bool = True
    use_unseen_frame_pretrain: bool = True

    @classmethod
    def from_conf(cls, cfg, num_frames: int | None = None) -> "LossFlags":
        """Read the resolved config (``info.use_*``, ``info.decay_iteration``, ``info.blending_thickness``, ...).

        ``use_unseen_frame_pretrain`` is ``info.use_unseen_frame_pretrain`` in unseen-frames mode
        (``model.unseen_frame_rendering``), else True. With ``num_frames`` a null ``info.decay_iteration`` is
        resolved to max(25, num_frames) here; otherwise at each call.
        """
        i = cfg.info
        unseen_frames_mode = bool(cfg.model.unseen_frame_rendering)
        decay = None if i.decay_iteration is None else int(i.decay_iteration)
        if decay is None and num_frames is not None:
            decay = resolve_decay_iteration(None, num_frames)
        return cls(
            use_feat_consistency=bool(i.use_feat_consistency), use_flow=bool(i.use_flow),
            use_depth_blending_loss=bool(i.use_depth_blending_loss), use_static_flow_loss=bool(i.use_static_flow_loss),
            use_mask_flow_loss=bool(i.use_mask_flow_loss), use_lambda_decay=bool(i.use_lambda_decay),
            decay_iteration=decay,
            blending_thickness=float(i.blending_thickness), ndc=not bool(i.no_ndc),
            use_unseen_frame_pretrain=bool(i.use_unseen_frame_pretrain) if unseen_frames_mode else True,
        )


# ------------------------------------------------------------------------------------------------------ schedules
def resolve_decay_iteration(decay_iteration: int | None, num_frames: int) -> int:
    """``info.decay_iteration``, with null meaning ``max(25, num_frames)`` (method.md §4.3)."""
    return max(25, int(num_frames)) if decay_iteration is None else int(decay_iteration)


def _decay_period(flags: LossFlags, num_frames: int) -> int:
    period = resolve_decay_iteration(flags.decay_iteration, num_frames) * 1000
    if period <= 0:
        raise ValueError(f"info.decay_iteration must be positive with info.use_lambda_decay (got "
                         f"{flags.decay_iteration}; method.md §8.30)")
    return period


def flow_temperature(iteration: int, flags: LossFlags, num_frames: int) -> float:
    """Temp of the flow losses: ``10^-(iteration // (decay_iteration·1000))`` with lambda decay, else 1 (§4.3)."""
    if not flags.use_lambda_decay:
        return 1.0
    return 1.0 / (10 ** (iteration // _decay_period(flags, num_frames)))


def mask_losses_active(iteration: int, flags: LossFlags, num_frames: int) -> bool:
    """Whether #12 and #16 count: always without lambda decay, else while ``iteration < decay_iteration·1000``."""
    return not flags.use_lambda_decay or iteration < _decay_period(flags, num_frames)
