"""Loss assembly of the two training stages (spec §4.2, §4.3; the original's ``train/train.py`` train_step).

Dimension vocabulary: ``S`` scenes, ``T`` frames per scene, ``R`` rays per scene, ``K`` samples per ray.

:func:`dynamic_stage_losses` computes every term #1-#19 of the spec §4.3 table, in the original's order and with
its ``loss_dict`` keys, and returns ``(total, logs)`` with ``total = Σ weight · logs[key]`` over the weighted keys
(:func:`term_weights`). :func:`static_stage_loss` is the static pretraining loss (spec §4.2).
NaN checks are the trainer's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mononerf.data.dataset import RayBatch
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
    mse2psnr,
)
from mononerf.quirks import Quirks
from mononerf.utils.checks import check_shape
from mononerf.utils.tensors import constant_like

# Loss-dict keys of the dynamic stage in the order the original fills them (spec §4.3, §5.4 i_print).
DYNAMIC_LOG_KEYS = (
    "psnr_s", "img_s_loss", "psnr", "img_loss", "psnr_d", "img_d_loss", "psnr_d_f", "img_d_f_loss",
    "psnr_d_b", "img_d_b_loss", "flow_f_loss", "flow_b_loss", "slow_loss", "smooth_loss", "sp_smooth_loss",
    "consistency_loss", "mask_loss", "sparse_loss", "sparse_weights_d_loss", "sparse_blending_loss",
    "depth_blending_loss", "static_flow_loss", "mask_flow_loss", "depth_loss", "order_loss", "sf_smooth_loss",
) + ("blend_dynamic", "blend_static")  # fmt: skip
# The last two are not the original's: the mean blended dynamic weight (dynamicness) of the dynamic-sampled and the
# static-sampled rays, logged only — what the blending does where the motion masks say the scene moves and not.


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


# --------------------------------------------------------------------------------------------------------- stages
_ALWAYS = ("rgb_map_d", "weights_d", "dynamicness_map", "blending", "depth_map_d", "depth_map_s", "raw_pts",
           "raw_pts_f", "raw_pts_b", "raw_pts_b_b", "raw_pts_f_f")
_NEEDS = {
    "use_unseen_frame_pretrain": ("rgb_map_s", "rgb_map_full"),
    "use_feat_consistency": ("rgb_map_d_f", "rgb_map_d_b"),
    "use_flow": ("sceneflow_f", "sceneflow_b", "sceneflow_f_b", "sceneflow_b_f"),
    "use_depth_blending_loss": ("z_vals", "blending_map"),
    "use_static_flow_loss": ("sceneflow_f", "sceneflow_b"),
    "use_mask_flow_loss": ("blending_f", "blending_b"),
}


def _check_inputs(ret: dict[str, Tensor], batch: RayBatch, flags: LossFlags) -> None:
    needed = list(_ALWAYS)
    for flag, keys in _NEEDS.items():
        if getattr(flags, flag):
            needed += keys
    missing = [k for k in needed if k not in ret]
    if missing:
        raise KeyError(f"render output lacks {missing} needed by the enabled loss terms (render_rays_dynamic with "
                       "inference=False returns them all)")
    check_shape(batch.target, "S R 3", "batch.target")
    S, R = batch.target.shape[:2]
    check_shape(batch.static_mask, f"{S} {R} 1", "batch.static_mask")
    check_shape(batch.invdepth, f"{S} {R}", "batch.invdepth")
    check_shape(batch.grid, f"{S} {R} 8", "batch.grid")
    check_shape(batch.frame, f"{S}", "batch.frame")
    check_shape(ret["weights_d"], f"{S} {R} K", "ret['weights_d']")


def _per_scene(value: float | Tensor, S: int, like: Tensor, name: str) -> Tensor:
    v = constant_like(value, like)
    if v.numel() == 1:
        return v.reshape(()).expand(S)
    if v.numel() != S:
        raise ValueError(f"{name} must be a number or hold one value per scene ({S}); got shape {tuple(v.shape)}")
    return v.reshape(S)


def _flow_losses(
    ret: dict[str, Tensor], batch: RayBatch, c2w_all: Tensor, H, W, focal, num_frames: int, flags: LossFlags,
    quirks: Quirks, logs: dict[str, Tensor],
) -> None:
    """#6-7: induced optical flow vs RAFT flow, per scene with an existing neighbour frame (spec §3.5, §8.10)."""
    S = batch.grid.shape[0]
    like = ret["raw_pts_f"]
    check_shape(c2w_all, f"{S} T 3 4", "c2w_all")
    Hs, Ws, fs = (_per_scene(v, S, like, n) for v, n in ((H, "H"), (W, "W"), (focal, "focal")))
    frame = batch.frame.to(c2w_all.device).long()
    scenes = torch.arange(S, device=c2w_all.device)
    for key, step, pts_key, gt in (("flow_f_loss", 1, "raw_pts_f", slice(2, 5)), ("flow_b_loss", -1, "raw_pts_b",
                                                                                 slice(5, 8))):
        valid = (frame < num_frames - 1) if step > 0 else (frame > 0)
        if not bool(valid.any()):
            continue
        neighbour = (frame + step).clamp(0, c2w_all.shape[1] - 1)
        c2w = c2w_all[scenes, neighbour]  # (S, 3, 4)
        v = valid.to(like.device)
        gt_flow = batch.grid[v][..., gt]
        per_scene = induced_flow_loss(
            ret[pts_key][v], ret["weights_d"][v], c2w[valid].to(like), Hs[v], Ws[v], fs[v],
            batch.grid[v][..., 0:2], gt_flow[..., 0:2], gt_flow[..., 2:3], ndc=flags.ndc,
        )
        logs[key] = per_scene.sum() if quirks.flow_loss_scene_sum else per_scene.mean()


def dynamic_stage_losses(
    ret: dict[str, Tensor],
    batch: RayBatch,
    *,
    c2w_all: Tensor,
    H: float | Tensor,
    W: float | Tensor,
    focal: float | Tensor,
    num_frames: int,
    num_static: int | None = None,
    weights: LossWeights,
    flags: LossFlags,
    quirks: Quirks,
    iteration: int,
    near: float = 0.0,
    far: float = 1.0,
    train_blending: bool = True,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Every dynamic-stage loss term #1-#19 of spec §4.3, in the original's order, and their weighted sum.

    Terms (Ms = static-ray mask, Md = 1 - Ms; "over Ms" = on the rays with Ms = 1):

    1. img_s_loss / psnr_s = img2mse(rgb_map_s, target, Ms) on ``[:num_static]`` — of the SCENE dim with quirk
       ``img_s_loss_scene_slice`` (= all rays), else of the ray dim. Logged only.
    2. img_loss / psnr = mse(rgb_map_full, target).   3. img_d_loss / psnr_d = mse(rgb_map_d, target).
    4-5. img_d_f_loss, img_d_b_loss (+ psnr) = mse of the t+1 / t-1 renders, where frame t+1 / t-1 exists:
       quirk ``frame_gating_leak`` decides by the LAST scene's frame for all scenes (spec §8.9), else per scene
       (mean over the rays of the scenes that have the neighbour).
    6-7. flow_f_loss, flow_b_loss = per scene with a neighbour, masked MAE of the induced flow
       (:func:`mononerf.losses.terms.induced_flow_loss`, neighbour pose ``c2w_all[s, frame ± 1]``) vs
       ``grid[..., 2:4]`` / ``[..., 5:7]`` with masks ``[..., 4]`` / ``[..., 7]``; summed over scenes with quirk
       ``flow_loss_scene_sum`` (spec §8.10), else averaged. Weight ``flow · Temp``.
    8. slow_loss = L1(sceneflow_b) + L1(sceneflow_f).
    9. smooth_loss = sf_smooth(raw_pts, raw_pts_f, raw_pts_b).
    10. sp_smooth_loss = sf_smooth_s(raw_pts, raw_pts_f) + sf_smooth_s(raw_pts, raw_pts_b).
    11. consistency_loss = L1(sceneflow_f + sceneflow_f_b) + L1(sceneflow_b + sceneflow_b_f).
    12. mask_loss = L1(blending over Ms) + img2mae(dynamicness_map, Md).
    13. sparse_loss = sparse_weights_d_loss + sparse_blending_loss = entropy(weights_d) + entropy(blending).
    14. depth_blending_loss (weight 1), see :func:`~mononerf.losses.terms.compute_depth_blending_loss`, with the
        batch-wide max/min disparity; quirk ``depth_target_in_place``: ``batch.invdepth`` and ``ret['z_vals']``
        ARE MODIFIED IN PLACE and #17 then reads the rewritten target (spec §8.4).
    15. static_flow_loss = L2(sceneflow_b[:, :num_static]) + L2(sceneflow_f[:, :num_static]).
    16. mask_flow_loss = L1(blending_f over Ms) + L1(blending_b over Ms).
    17. depth_loss = compute_depth_loss(depth_map_d, -batch.invdepth).
    18. order_loss = mean((depth_map_d - depth_map_s.detach())² over Ms).
    19. sf_smooth_loss = sf_smooth(raw_pts_b, raw_pts, raw_pts_b_b) + sf_smooth(raw_pts_f, raw_pts_f_f, raw_pts).

    Logged only (not the original's): ``blend_dynamic`` / ``blend_static``, the mean dynamicness of the dynamic /
    static rays (0 when there are none).

    Gates: #4-5 ``flags.use_feat_consistency``; #6-11 ``use_flow``; #14-16 their ``use_*`` flags; #1-2 off with
    ``use_unseen_frame_pretrain = False``. A gated-off term has no key in ``logs``.

    Args:
        ret: output of :func:`mononerf.render.renderer.render_rays_dynamic` (training, not inference).
        batch: the step's rays (``target``, ``static_mask``, ``invdepth``, ``grid``, ``frame``).
        c2w_all: (S, T, 3, 4) camera-to-world poses of every frame.
        H, W, focal: image size and focal, numbers or per-scene (S,).
        num_frames: T.
        num_static: rays [0, num_static) of each scene are static-sampled; None = ``batch.num_static``.
        weights, flags, quirks: see :class:`LossWeights`, :class:`LossFlags`, :class:`~mononerf.quirks.Quirks`.
        iteration: dynamic-stage step (lambda decay).
        near, far: sampling bounds (0, 1 in NDC).
        train_blending: False leaves the terms that train the blending weight out of the total (a blending
            warm-up step, :func:`term_weights`); they are still logged.

    Returns:
        ``(total, logs)``: total 0-d tensor; logs = the original's loss-dict keys (0-d tensors, still attached
        to the graph) in its order.
    """
    _check_inputs(ret, batch, flags)
    num_static = batch.num_static if num_static is None else int(num_static)
    target, ms = batch.target, batch.static_mask
    static_rays = ms[..., 0].bool()
    logs: dict[str, Tensor] = {}

    def photometric(key: str, psnr_key: str, value: Tensor) -> None:
        logs[psnr_key] = mse2psnr(value)
        logs[key] = value

    # 1-3: photometric losses at t.
    if flags.use_unseen_frame_pretrain:
        cut = (slice(None, num_static),) if quirks.img_s_loss_scene_slice else (slice(None), slice(None, num_static))
        photometric("img_s_loss", "psnr_s", img2mse(ret["rgb_map_s"][cut], target[cut], ms[cut]))
        photometric("img_loss", "psnr", img2mse(ret["rgb_map_full"], target))
    photometric("img_d_loss", "psnr_d", img2mse(ret["rgb_map_d"], target))

    # 4-5: dynamic renders at t+1 / t-1 against the frame-t colours.
    if flags.use_feat_consistency:
        frame = batch.frame.long().cpu()  # one read-back for both gates
        for key, psnr_key, rgb_key, has_neighbour in (
            ("img_d_f_loss", "psnr_d_f", "rgb_map_d_f", frame < num_frames - 1),
            ("img_d_b_loss", "psnr_d_b", "rgb_map_d_b", frame > 0),
        ):
            if quirks.frame_gating_leak:
                if bool(has_neighbour[-1]):
                    photometric(key, psnr_key, img2mse(ret[rgb_key], target))
            elif bool(has_neighbour.any()):
                sel = has_neighbour.to(target.device)
                photometric(key, psnr_key, img2mse(ret[rgb_key][sel], target[sel]))

    # 6-11: optical flow and scene-flow regularisers.
    if flags.use_flow:
        _flow_losses(ret, batch, c2w_all, H, W, focal, num_frames, flags, quirks, logs)
        logs["slow_loss"] = L1(ret["sceneflow_b"]) + L1(ret["sceneflow_f"])
        logs["smooth_loss"] = compute_sf_smooth_loss(ret["raw_pts"], ret["raw_pts_f"], ret["raw_pts_b"], H, W, focal,
                                                     ndc=flags.ndc)
        logs["sp_smooth_loss"] = (compute_sf_smooth_s_loss(ret["raw_pts"], ret["raw_pts_f"], H, W, focal, ndc=flags.ndc)
                                  + compute_sf_smooth_s_loss(ret["raw_pts"], ret["raw_pts_b"], H, W, focal,
                                                             ndc=flags.ndc))
        logs["consistency_loss"] = (L1(ret["sceneflow_f"] + ret["sceneflow_f_b"])
                                    + L1(ret["sceneflow_b"] + ret["sceneflow_b_f"]))

    # 12-13: blending mask and sparsity.
    logs["mask_loss"] = L1(ret["blending"][static_rays]) + img2mae(ret["dynamicness_map"][..., None], 1 - ms)
    sparse_w = entropy(ret["weights_d"], batch_normalisation=quirks.entropy_batch_normalisation)
    sparse_b = entropy(ret["blending"], batch_normalisation=quirks.entropy_batch_normalisation)
    logs["sparse_loss"] = sparse_w + sparse_b
    logs["sparse_weights_d_loss"] = sparse_w
    logs["sparse_blending_loss"] = sparse_b

    # 14: depth blending — BEFORE #17, which reads the (possibly rewritten) disparity.
    invdepth = batch.invdepth
    if flags.use_depth_blending_loss:
        logs["depth_blending_loss"] = compute_depth_blending_loss(
            invdepth, ret["z_vals"], ret["blending_map"], near=near, far=far,
            min_depth=invdepth.max(), max_depth=invdepth.min(), mask=1 - ms, thickness=flags.blending_thickness,
            in_place=quirks.depth_target_in_place,
        )

    # 15-16: static scene flow and neighbour blending on static rays.
    if flags.use_static_flow_loss:
        logs["static_flow_loss"] = L2(ret["sceneflow_b"][:, :num_static]) + L2(ret["sceneflow_f"][:, :num_static])
    if flags.use_mask_flow_loss:
        logs["mask_flow_loss"] = L1(ret["blending_f"][static_rays]) + L1(ret["blending_b"][static_rays])

    # 17-19: depth, depth order, temporal smoothness at t±1.
    logs["depth_loss"] = compute_depth_loss(ret["depth_map_d"], -invdepth)
    logs["order_loss"] = torch.mean(
        torch.square(ret["depth_map_d"][static_rays] - ret["depth_map_s"].detach()[static_rays]))
    logs["sf_smooth_loss"] = (
        compute_sf_smooth_loss(ret["raw_pts_b"], ret["raw_pts"], ret["raw_pts_b_b"], H, W, focal, ndc=flags.ndc)
        + compute_sf_smooth_loss(ret["raw_pts_f"], ret["raw_pts_f_f"], ret["raw_pts"], H, W, focal, ndc=flags.ndc)
    )

    # diagnostics (logged only): where the blending sends the render, on dynamic and on static rays
    dyn, m_s = ret["dynamicness_map"].detach(), ms[..., 0].to(ret["dynamicness_map"].dtype)
    logs["blend_dynamic"] = (dyn * (1 - m_s)).sum() / (1 - m_s).sum().clamp_min(1.0)  # (no read-back: 0 if no rays)
    logs["blend_static"] = (dyn * m_s).sum() / m_s.sum().clamp_min(1.0)

    wts = term_weights(weights, flags, iteration=iteration, num_frames=num_frames, train_blending=train_blending)
    total = torch.zeros((), device=target.device, dtype=target.dtype)
    for key, value in logs.items():
        if key in wts:
            total = total + wts[key] * value
    return total, logs


def static_stage_loss(ret: dict[str, Tensor], batch: RayBatch, static_loss_lambda: float = 1.0
                      ) -> tuple[Tensor, dict[str, Tensor]]:
    """Static pretraining loss (spec §4.2): ``static_loss_lambda · mse(rgb_map_s, target)`` over all rays.

    Args:
        ret: output of :func:`mononerf.render.renderer.render_rays_static` (``rgb_map_s`` (S, R, 3)).
        batch: static-sampled rays (``target`` (S, R, 3)).
        static_loss_lambda: ``train.static_loss_lambda``.

    Returns:
        ``(total, {"psnr_s", "img_s_loss"})``.
    """
    if "rgb_map_s" not in ret:
        raise KeyError("render output lacks 'rgb_map_s' (render_rays_static returns it)")
    check_shape(ret["rgb_map_s"], f"{' '.join(map(str, batch.target.shape))}", "ret['rgb_map_s']")
    img_s_loss = img2mse(ret["rgb_map_s"], batch.target)
    return static_loss_lambda * img_s_loss, {"psnr_s": mse2psnr(img_s_loss), "img_s_loss": img_s_loss}
