"""Loss terms (method.md §4.1) and the per-stage loss assembly (method.md §4.2, §4.3)."""

from mononerf.losses.terms import (
    L1,
    L2,
    compute_depth_blending_loss,
    compute_depth_loss,
    compute_sf_smooth_loss,
    compute_sf_smooth_s_loss,
    entropy,
    img2mae,
    img2mse,
    induced_flow_loss,
    masked_mae_per_scene,
    mse2psnr,
)
from mononerf.losses.term import LossInputs, Term
from mononerf.losses.total import (
    DYNAMIC_LOG_KEYS,
    TERMS,
    WEIGHT_KEYS,
    dynamic_stage_losses,
    loss_weights,
    static_stage_loss,
    term_weights,
)
from mononerf.losses.weights import (
    LossFlags,
    LossWeights,
    Weight,
    flow_temperature,
    mask_losses_active,
    resolve_decay_iteration,
)

__all__ = [
    "DYNAMIC_LOG_KEYS",
    "L1",
    "L2",
    "LossFlags",
    "LossInputs",
    "LossWeights",
    "TERMS",
    "Term",
    "WEIGHT_KEYS",
    "Weight",
    "compute_depth_blending_loss",
    "compute_depth_loss",
    "compute_sf_smooth_loss",
    "compute_sf_smooth_s_loss",
    "dynamic_stage_losses",
    "entropy",
    "flow_temperature",
    "img2mae",
    "img2mse",
    "induced_flow_loss",
    "loss_weights",
    "mask_losses_active",
    "masked_mae_per_scene",
    "mse2psnr",
    "resolve_decay_iteration",
    "static_stage_loss",
    "term_weights",
]
