"""Weights, gates and schedules of the loss terms (spec §4.3 "weight" column, lambda decay, blending warm-up)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LossWeights:
    """The λ of every weighted term (spec §4.3 table; defaults = the original's command-line defaults).

    Attributes:
        full: #2 img_loss (``train.full_loss_lambda``).
        dynamic: #3-5 img_d / img_d_f / img_d_b (``train.dynamic_loss_lambda``).
        static: static pretraining photometric loss (``train.static_loss_lambda``, spec §4.2).
        depth: #17 (``train.depth_loss_lambda``).  order: #18 (``train.order_loss_lambda``).
        flow: #6-7, times the decay factor Temp (``info.flow_loss_lambda``).
        slow: #8 (``info.slow_loss_lambda``).  smooth: #9, #10, #19 (``train.smooth_loss_lambda``).
        consistency: #11 (``train.consistency_loss_lambda``).  mask: #12 (``train.mask_loss_lambda``).
        sparse: #13 (``train.sparse_loss_lambda``).  static_flow: #15 (``info.static_flow_loss_lambda``).
        mask_flow: #16 (``info.mask_flow_loss_lambda``); None = ``mask``.
    """

    full: float = 3.0
    dynamic: float = 1.0
    static: float = 1.0
    depth: float = 0.04
    order: float = 0.1
    flow: float = 0.02
    slow: float = 0.01
    smooth: float = 0.1
    consistency: float = 1.0
    mask: float = 0.1
    sparse: float = 0.001
    static_flow: float = 0.5
    mask_flow: float | None = None

    def __post_init__(self) -> None:
        if self.mask_flow is None:
            self.mask_flow = self.mask

    @classmethod
    def from_conf(cls, cfg) -> "LossWeights":
        """Read the resolved config (``train.*_loss_lambda``, ``info.{flow,slow,static_flow,mask_flow}_loss_lambda``).
        """
        t, i = cfg.train, cfg.info
        return cls(
            full=float(t.full_loss_lambda), dynamic=float(t.dynamic_loss_lambda), static=float(t.static_loss_lambda),
            depth=float(t.depth_loss_lambda), order=float(t.order_loss_lambda), flow=float(i.flow_loss_lambda),
            slow=float(i.slow_loss_lambda), smooth=float(t.smooth_loss_lambda),
            consistency=float(t.consistency_loss_lambda), mask=float(t.mask_loss_lambda),
            sparse=float(t.sparse_loss_lambda), static_flow=float(i.static_flow_loss_lambda),
            mask_flow=None if i.mask_flow_loss_lambda is None else float(i.mask_flow_loss_lambda),
        )


@dataclass
class LossFlags:
    """Gates and settings of the dynamic-stage terms (spec §4.3; defaults = the original's code defaults).

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
            false`` (spec §1.6, §5.8): no img_s / img losses, and img_d is weighted by ``full``.
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
    """``info.decay_iteration``, with null meaning ``max(25, num_frames)`` (spec §4.3)."""
    return max(25, int(num_frames)) if decay_iteration is None else int(decay_iteration)


def _decay_period(flags: LossFlags, num_frames: int) -> int:
    period = resolve_decay_iteration(flags.decay_iteration, num_frames) * 1000
    if period <= 0:
        raise ValueError(f"info.decay_iteration must be positive with info.use_lambda_decay (got "
                         f"{flags.decay_iteration}; spec §8.30)")
    return period


def flow_temperature(iteration: int, flags: LossFlags, num_frames: int) -> float:
    """Temp of the flow losses: ``10^-(iteration // (decay_iteration·1000))`` with lambda decay, else 1 (§4.3)."""
    if not flags.use_lambda_decay:
        return 1.0
    return 1.0 / (10 ** (iteration // _decay_period(flags, num_frames)))


def mask_losses_active(iteration: int, flags: LossFlags, num_frames: int) -> bool:
    """Whether #12 and #16 count: always without lambda decay, else while ``iteration < decay_iteration·1000``."""
    return not flags.use_lambda_decay or iteration < _decay_period(flags, num_frames)


# Terms that depend on the blending weight: the blended render (#2), the blending supervision (#12, #14, #16) and
# the blending half of the entropy (#13). A blending warm-up (``train.blending_warmup``) leaves them out.
BLENDING_TERMS = ("img_loss", "mask_loss", "mask_flow_loss", "depth_blending_loss", "sparse_blending_loss")


def term_weights(weights: LossWeights, flags: LossFlags, *, iteration: int, num_frames: int,
                 train_blending: bool = True) -> dict[str, float]:
    """Weight of every loss-dict key that enters the total at this step (spec §4.3 "weight" column).

    Keys absent here are logged only (img_s_loss, psnr*, sparse_weights_d_loss, sparse_blending_loss); a key
    present here still counts only when the step computed it (gates, frame availability).

    ``train_blending = False`` (the steps of a blending warm-up, ``train.blending_warmup``; not in the original):
    the :data:`BLENDING_TERMS` are left out, so nothing trains the blending head, and #13 counts its dynamic-weights
    half (``sparse_weights_d_loss``) alone.
    """
    temp = flow_temperature(iteration, flags, num_frames)
    mask_on = mask_losses_active(iteration, flags, num_frames)
    out = {
        "img_loss": weights.full,
        "img_d_loss": weights.dynamic if flags.use_unseen_frame_pretrain else weights.full,
        "img_d_f_loss": weights.dynamic, "img_d_b_loss": weights.dynamic,
        "flow_f_loss": weights.flow * temp, "flow_b_loss": weights.flow * temp,
        "slow_loss": weights.slow, "smooth_loss": weights.smooth, "sp_smooth_loss": weights.smooth,
        "consistency_loss": weights.consistency,
        "sparse_loss": weights.sparse, "depth_blending_loss": 1.0, "static_flow_loss": weights.static_flow,
        "depth_loss": weights.depth, "order_loss": weights.order, "sf_smooth_loss": weights.smooth,
    }  # fmt: skip
    if mask_on:
        out["mask_loss"] = weights.mask
        out["mask_flow_loss"] = float(weights.mask_flow)
    if not train_blending:
        for key in BLENDING_TERMS:
            out.pop(key, None)
        out["sparse_weights_d_loss"] = out.pop("sparse_loss")
    return out
