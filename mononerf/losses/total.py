"""Loss assembly of the two training stages (method.md §4.2, §4.3; the original's ``train/train.py`` train_step).

Dimension vocabulary: ``S`` scenes, ``T`` frames per scene, ``R`` rays per scene, ``K`` samples per ray.

The dynamic stage is a table of terms, :data:`TERMS`, in the original's order: each :class:`Term` names the
loss-dict keys it writes, the :class:`~mononerf.losses.weights.LossFlags` gate that switches it on, the render
outputs it reads, the function that computes it and the :class:`~mononerf.losses.weights.Weight` of each key it
weighs (config key of the λ, schedule). :func:`dynamic_stage_losses` runs the table and sums ``weight · logs[key]``
over the weighted keys (:func:`term_weights`); the log keys, their order, the λ keys to read
(:data:`WEIGHT_KEYS`) and the render outputs a configuration needs all come from the table. Adding a term is one
entry here (and, for a λ of its own, its key's row in :mod:`mononerf.config.schema` or
:mod:`mononerf.config.flags`). :func:`static_stage_loss` is the static pretraining loss (method.md §4.2). NaN checks
are the trainer's.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mononerf.data.dataset import RayBatch
from mononerf.geometry.cameras import Pinhole
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
from mononerf.losses.term import LossInputs, Term
from mononerf.losses.weights import LossFlags, LossWeights, Weight, flow_temperature, mask_losses_active
from mononerf.quirks import Quirks
from mononerf.utils.checks import check_shape
from mononerf.utils.host import host_read


# ---------------------------------------------------------------------------------------------------- the terms
def _photometric(key: str, psnr_key: str, value: Tensor) -> dict[str, Tensor]:
    return {psnr_key: mse2psnr(value), key: value}


def _img_s_and_img(x: LossInputs) -> dict[str, Tensor]:
    """#1 img_s_loss (logged only) and #2 img_loss, the static and the blended render at t."""
    out, target, ms, n = x.outputs, x.batch.target, x.batch.static_mask, x.num_static
    cut = (slice(None, n),) if x.quirks.img_s_loss_scene_slice else (slice(None), slice(None, n))
    return {**_photometric("img_s_loss", "psnr_s", img2mse(out["rgb_map_s"][cut], target[cut], ms[cut])),
            **_photometric("img_loss", "psnr", img2mse(out["rgb_map_full"], target))}


def _img_d(x: LossInputs) -> dict[str, Tensor]:
    """#3 img_d_loss: the dynamic render at t."""
    return _photometric("img_d_loss", "psnr_d", img2mse(x.outputs["rgb_map_d"], x.batch.target))


def _img_d_neighbours(x: LossInputs) -> dict[str, Tensor]:
    """#4-5 img_d_f_loss / img_d_b_loss: the dynamic renders at t+1 / t-1 against the frame-t colours."""
    out: dict[str, Tensor] = {}
    target = x.batch.target
    with host_read("which scenes have a frame t+1 / t-1 gates the terms"):
        frame = x.batch.frame.long().cpu()  # one read-back for both gates
    for key, psnr_key, rgb_key, has_neighbour in (
        ("img_d_f_loss", "psnr_d_f", "rgb_map_d_f", frame < x.num_frames - 1),
        ("img_d_b_loss", "psnr_d_b", "rgb_map_d_b", frame > 0),
    ):
        if x.quirks.frame_gating_leak:
            if bool(has_neighbour[-1]):
                out.update(_photometric(key, psnr_key, img2mse(x.outputs[rgb_key], target)))
        elif bool(has_neighbour.any()):
            sel = has_neighbour.to(target.device)
            out.update(_photometric(key, psnr_key, img2mse(x.outputs[rgb_key][sel], target[sel])))
    return out


def _flow(x: LossInputs) -> dict[str, Tensor]:
    """#6-7 flow_f_loss / flow_b_loss: induced optical flow vs RAFT flow, per scene with an existing neighbour
    frame (method.md §3.5, §8.10)."""
    batch, c2w_all = x.batch, x.c2w_all
    S = batch.grid.shape[0]
    like = x.outputs["raw_pts_f"]
    check_shape(c2w_all, f"{S} T 3 4", "c2w_all")
    cams = x.camera.expand(S, like)
    frame = batch.frame.to(c2w_all.device).long()
    scenes = torch.arange(S, device=c2w_all.device)
    out = {}
    for key, step, pts_key in (("flow_f_loss", 1, "raw_pts_f"), ("flow_b_loss", -1, "raw_pts_b")):
        valid = (frame < x.num_frames - 1) if step > 0 else (frame > 0)
        if not bool(valid.any()):
            continue
        neighbour = (frame + step).clamp(0, c2w_all.shape[1] - 1)
        c2w = c2w_all[scenes, neighbour]  # (S, 3, 4)
        v = valid.to(like.device)
        gt_flow, gt_mask = batch.flow(step)
        per_scene = induced_flow_loss(
            x.outputs[pts_key][v], x.outputs["weights_d"][v], c2w[valid].to(like), cams.select(v),
            batch.pixel_xy[v], gt_flow[v], gt_mask[v], ndc=x.flags.ndc,
        )
        out[key] = per_scene.sum() if x.quirks.flow_loss_scene_sum else per_scene.mean()
    return out


def _scene_flow_priors(x: LossInputs) -> dict[str, Tensor]:
    """#8 slow_loss, #9 smooth_loss, #10 sp_smooth_loss, #11 consistency_loss."""
    out, cam, ndc = x.outputs, x.camera, x.flags.ndc
    return {
        "slow_loss": L1(out["sceneflow_b"]) + L1(out["sceneflow_f"]),
        "smooth_loss": compute_sf_smooth_loss(out["raw_pts"], out["raw_pts_f"], out["raw_pts_b"], cam, ndc=ndc),
        "sp_smooth_loss": (compute_sf_smooth_s_loss(out["raw_pts"], out["raw_pts_f"], cam, ndc=ndc)
                           + compute_sf_smooth_s_loss(out["raw_pts"], out["raw_pts_b"], cam, ndc=ndc)),
        "consistency_loss": (L1(out["sceneflow_f"] + out["sceneflow_f_b"])
                             + L1(out["sceneflow_b"] + out["sceneflow_b_f"])),
    }


def _mask_and_sparsity(x: LossInputs) -> dict[str, Tensor]:
    """#12 mask_loss (blending on static rays, dynamicness vs the motion mask) and #13 the entropies."""
    out, ms = x.outputs, x.batch.static_mask
    # (in this order: the order of the graph's operations decides the float sums of the backward pass)
    with host_read(MASKED_MEAN):
        mask = L1(out["blending"][x.static_rays]) + img2mae(out["dynamicness_map"][..., None], 1 - ms)
    sparse_w = entropy(out["weights_d"], batch_normalisation=x.quirks.entropy_batch_normalisation)
    sparse_b = entropy(out["blending"], batch_normalisation=x.quirks.entropy_batch_normalisation)
    return {"mask_loss": mask, "sparse_loss": sparse_w + sparse_b, "sparse_weights_d_loss": sparse_w,
            "sparse_blending_loss": sparse_b}


def _depth_blending(x: LossInputs) -> dict[str, Tensor]:
    """#14 depth_blending_loss — BEFORE #17, which reads the (with the quirk: rewritten) disparity."""
    invdepth = x.batch.invdepth
    return {"depth_blending_loss": compute_depth_blending_loss(
        invdepth, x.outputs["z_vals"], x.outputs["blending_map"], near=x.near, far=x.far, min_depth=invdepth.max(),
        max_depth=invdepth.min(), mask=1 - x.batch.static_mask, thickness=x.flags.blending_thickness,
        in_place=x.quirks.depth_target_in_place)}


def _static_flow(x: LossInputs) -> dict[str, Tensor]:
    """#15 static_flow_loss: no scene flow on the static-sampled rays."""
    n = x.num_static
    return {"static_flow_loss": L2(x.outputs["sceneflow_b"][:, :n]) + L2(x.outputs["sceneflow_f"][:, :n])}


def _mask_flow(x: LossInputs) -> dict[str, Tensor]:
    """#16 mask_flow_loss: no blending at t±1 on the static rays."""
    with host_read(MASKED_MEAN):
        return {"mask_flow_loss": L1(x.outputs["blending_f"][x.static_rays]) + L1(x.outputs["blending_b"][x.static_rays])}


def _depth_order_smoothness(x: LossInputs) -> dict[str, Tensor]:
    """#17 depth_loss, #18 order_loss, #19 sf_smooth_loss (temporal smoothness at t±1)."""
    out, sr, cam, ndc = x.outputs, x.static_rays, x.camera, x.flags.ndc
    depth = compute_depth_loss(out["depth_map_d"], -x.batch.invdepth)  # first: the graph's order, as above
    with host_read(MASKED_MEAN):
        order = torch.mean(torch.square(out["depth_map_d"][sr] - out["depth_map_s"].detach()[sr]))
    return {
        "depth_loss": depth,
        "order_loss": order,
        "sf_smooth_loss": (
            compute_sf_smooth_loss(out["raw_pts_b"], out["raw_pts"], out["raw_pts_b_b"], cam, ndc=ndc)
            + compute_sf_smooth_loss(out["raw_pts_f"], out["raw_pts_f_f"], out["raw_pts"], cam, ndc=ndc)),
    }


def _blend_diagnostics(x: LossInputs) -> dict[str, Tensor]:
    """Logged only (not the original's): the mean dynamicness of the dynamic- and of the static-sampled rays."""
    dyn = x.outputs["dynamicness_map"].detach()
    m_s = x.batch.static_mask[..., 0].to(dyn.dtype)
    return {"blend_dynamic": (dyn * (1 - m_s)).sum() / (1 - m_s).sum().clamp_min(1.0),  # 0 if no rays, no read-back
            "blend_static": (dyn * m_s).sum() / m_s.sum().clamp_min(1.0)}


_FULL, _DYN, _SMOOTH = "train.full_loss_lambda", "train.dynamic_loss_lambda", "train.smooth_loss_lambda"
_MASK, _SPARSE = "train.mask_loss_lambda", "train.sparse_loss_lambda"
MASKED_MEAN = "the original's means over the static rays count them (an index by a boolean mask)"
_FLOW = Weight("info.flow_loss_lambda", schedule="decay")

TERMS: tuple[Term, ...] = (
    Term(("psnr_s", "img_s_loss", "psnr", "img_loss"), _img_s_and_img, "use_unseen_frame_pretrain",
         ("rgb_map_s", "rgb_map_full"), {"img_loss": Weight(_FULL, blending="trains")}),
    Term(("psnr_d", "img_d_loss"), _img_d, None, ("rgb_map_d",),
         {"img_d_loss": Weight(_DYN, without_pretrain=_FULL)}),
    Term(("psnr_d_f", "img_d_f_loss", "psnr_d_b", "img_d_b_loss"), _img_d_neighbours, "use_feat_consistency",
         ("rgb_map_d_f", "rgb_map_d_b"), {"img_d_f_loss": Weight(_DYN), "img_d_b_loss": Weight(_DYN)}),
    Term(("flow_f_loss", "flow_b_loss"), _flow, "use_flow", ("raw_pts_f", "raw_pts_b", "weights_d"),
         {"flow_f_loss": _FLOW, "flow_b_loss": _FLOW}),
    Term(("slow_loss", "smooth_loss", "sp_smooth_loss", "consistency_loss"), _scene_flow_priors, "use_flow",
         ("sceneflow_f", "sceneflow_b", "sceneflow_f_b", "sceneflow_b_f", "raw_pts", "raw_pts_f", "raw_pts_b"),
         {"slow_loss": Weight("info.slow_loss_lambda"), "smooth_loss": Weight(_SMOOTH),
          "sp_smooth_loss": Weight(_SMOOTH), "consistency_loss": Weight("train.consistency_loss_lambda")}),
    Term(("mask_loss", "sparse_loss", "sparse_weights_d_loss", "sparse_blending_loss"), _mask_and_sparsity, None,
         ("blending", "dynamicness_map", "weights_d"),
         {"mask_loss": Weight(_MASK, schedule="window", blending="trains"),
          "sparse_loss": Weight(_SPARSE, blending="trains"),
          "sparse_weights_d_loss": Weight(_SPARSE, blending="warmup")}),  # warm-up: the dynamic-weights half alone
    Term(("depth_blending_loss",), _depth_blending, "use_depth_blending_loss", ("z_vals", "blending_map"),
         {"depth_blending_loss": Weight(None, blending="trains")}),
    Term(("static_flow_loss",), _static_flow, "use_static_flow_loss", ("sceneflow_f", "sceneflow_b"),
         {"static_flow_loss": Weight("info.static_flow_loss_lambda")}),
    Term(("mask_flow_loss",), _mask_flow, "use_mask_flow_loss", ("blending_f", "blending_b"),
         {"mask_flow_loss": Weight("info.mask_flow_loss_lambda", fallback=_MASK, schedule="window",
                                   blending="trains")}),
    Term(("depth_loss", "order_loss", "sf_smooth_loss"), _depth_order_smoothness, None,
         ("depth_map_d", "depth_map_s", "raw_pts", "raw_pts_f", "raw_pts_b", "raw_pts_b_b", "raw_pts_f_f"),
         {"depth_loss": Weight("train.depth_loss_lambda"), "order_loss": Weight("train.order_loss_lambda"),
          "sf_smooth_loss": Weight(_SMOOTH)}),
    Term(("blend_dynamic", "blend_static"), _blend_diagnostics, None, ("dynamicness_map",)),
)
"""The dynamic-stage terms #1-#19 of method.md §4.3 in the original's order (its ``loss_dict`` order), then the
diagnostics."""

# Loss-dict keys of the dynamic stage in the order the original fills them (method.md §4.3, §5.4 i_print); the last two
# are not the original's (logged only: :func:`_blend_diagnostics`).
DYNAMIC_LOG_KEYS = tuple(key for term in TERMS for key in term.keys)

WEIGHT_KEYS = tuple(dict.fromkeys(k for term in TERMS for w in term.weights.values() for k in w.keys()))
"""The config keys of every λ the terms read (:class:`~mononerf.losses.weights.LossWeights`)."""


def loss_weights(cfg=None) -> LossWeights:
    """The λ of :data:`WEIGHT_KEYS` from the resolved config (None = their defaults)."""
    return LossWeights.defaults(WEIGHT_KEYS) if cfg is None else LossWeights.from_conf(cfg, WEIGHT_KEYS)


def term_weights(weights: LossWeights, flags: LossFlags, *, iteration: int, num_frames: int,
                 train_blending: bool = True) -> dict[str, float]:
    """Weight of every loss-dict key that enters the total at this step (each term's :class:`Weight`).

    Keys absent here are logged only (img_s_loss, psnr*, sparse_blending_loss, and sparse_weights_d_loss outside
    a warm-up); a key present here still counts only when the step computed it (gates, frame availability).
    ``train_blending = False`` (a blending warm-up step, ``train.blending_warmup``; not in the original) leaves out
    the terms that train the blending weight, and #13 counts its dynamic-weights half alone.
    """
    temp = flow_temperature(iteration, flags, num_frames)
    mask_on = mask_losses_active(iteration, flags, num_frames)
    out = {}
    for term in TERMS:
        for key, weight in term.weights.items():
            value = weight.value(weights, flags, temperature=temp, mask_on=mask_on, train_blending=train_blending)
            if value is not None:
                out[key] = value
    return out


def active_terms(flags: LossFlags) -> tuple[Term, ...]:
    return tuple(t for t in TERMS if t.gate is None or getattr(flags, t.gate))


def _check_inputs(outputs: dict[str, Tensor], batch: RayBatch, flags: LossFlags) -> None:
    needed = dict.fromkeys(k for term in active_terms(flags) for k in term.needs)
    missing = [k for k in needed if k not in outputs]
    if missing:
        raise KeyError(f"render output lacks {missing} needed by the enabled loss terms (render_rays_dynamic with "
                       "inference=False returns them all)")
    check_shape(batch.target, "S R 3", "batch.target")
    S, R = batch.target.shape[:2]
    check_shape(batch.static_mask, f"{S} {R} 1", "batch.static_mask")
    check_shape(batch.invdepth, f"{S} {R}", "batch.invdepth")
    check_shape(batch.grid, f"{S} {R} 8", "batch.grid")
    check_shape(batch.frame, f"{S}", "batch.frame")
    check_shape(outputs["weights_d"], f"{S} {R} K", "outputs['weights_d']")


def dynamic_stage_losses(
    outputs: dict[str, Tensor],
    batch: RayBatch,
    *,
    c2w_all: Tensor,
    camera: Pinhole,
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
    """Every dynamic-stage loss term #1-#19 of method.md §4.3, in the original's order, and their weighted sum.

    Terms (Ms = static-ray mask, Md = 1 - Ms; "over Ms" = on the rays with Ms = 1):

    1. img_s_loss / psnr_s = img2mse(rgb_map_s, target, Ms) on ``[:num_static]`` — of the SCENE dim with quirk
       ``img_s_loss_scene_slice`` (= all rays), else of the ray dim. Logged only.
    2. img_loss / psnr = mse(rgb_map_full, target).   3. img_d_loss / psnr_d = mse(rgb_map_d, target).
    4-5. img_d_f_loss, img_d_b_loss (+ psnr) = mse of the t+1 / t-1 renders, where frame t+1 / t-1 exists:
       quirk ``frame_gating_leak`` decides by the LAST scene's frame for all scenes (method.md §8.9), else per scene
       (mean over the rays of the scenes that have the neighbour).
    6-7. flow_f_loss, flow_b_loss = per scene with a neighbour, masked MAE of the induced flow
       (:func:`mononerf.losses.terms.induced_flow_loss`, neighbour pose ``c2w_all[s, frame ± 1]``) vs
       ``grid[..., 2:4]`` / ``[..., 5:7]`` with masks ``[..., 4]`` / ``[..., 7]``; summed over scenes with quirk
       ``flow_loss_scene_sum`` (method.md §8.10), else averaged. Weight ``flow · Temp``.
    8. slow_loss = L1(sceneflow_b) + L1(sceneflow_f).
    9. smooth_loss = sf_smooth(raw_pts, raw_pts_f, raw_pts_b).
    10. sp_smooth_loss = sf_smooth_s(raw_pts, raw_pts_f) + sf_smooth_s(raw_pts, raw_pts_b).
    11. consistency_loss = L1(sceneflow_f + sceneflow_f_b) + L1(sceneflow_b + sceneflow_b_f).
    12. mask_loss = L1(blending over Ms) + img2mae(dynamicness_map, Md).
    13. sparse_loss = sparse_weights_d_loss + sparse_blending_loss = entropy(weights_d) + entropy(blending).
    14. depth_blending_loss (weight 1), see :func:`~mononerf.losses.terms.compute_depth_blending_loss`, with the
        batch-wide max/min disparity; quirk ``depth_target_in_place``: ``batch.invdepth`` and ``outputs['z_vals']``
        ARE MODIFIED IN PLACE and #17 then reads the rewritten target (method.md §8.4).
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
        outputs: the render's outputs by name (:func:`mononerf.render.renderer.render_rays_dynamic`, training, not
            inference).
        batch: the step's rays (``target``, ``static_mask``, ``invdepth``, ``grid``, ``frame``).
        c2w_all: (S, T, 3, 4) camera-to-world poses of every frame.
        camera: the scenes' training intrinsics (:class:`~mononerf.geometry.cameras.Pinhole`, numbers or
            per-scene (S,) fields); ``Pinhole.centred(H, W, focal)`` is the original's camera.
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
    _check_inputs(outputs, batch, flags)
    x = LossInputs(outputs, batch, c2w_all, camera, num_frames,
                   batch.num_static if num_static is None else int(num_static), flags, quirks, near, far)
    logs: dict[str, Tensor] = {}
    for term in active_terms(flags):
        logs.update(term.fn(x))
    wts = term_weights(weights, flags, iteration=iteration, num_frames=num_frames, train_blending=train_blending)
    total = torch.zeros((), device=batch.target.device, dtype=batch.target.dtype)
    for key, value in logs.items():
        if key in wts:
            total = total + wts[key] * value
    return total, logs


def static_stage_loss(outputs: dict[str, Tensor], batch: RayBatch, static_loss_lambda: float = 1.0
                      ) -> tuple[Tensor, dict[str, Tensor]]:
    """Static pretraining loss (method.md §4.2): ``static_loss_lambda · mse(rgb_map_s, target)`` over all rays.

    Args:
        outputs: the render's outputs (:func:`mononerf.render.renderer.render_rays_static`: ``rgb_map_s`` (S, R, 3)).
        batch: static-sampled rays (``target`` (S, R, 3)).
        static_loss_lambda: ``train.static_loss_lambda``.

    Returns:
        ``(total, {"psnr_s", "img_s_loss"})``.
    """
    if "rgb_map_s" not in outputs:
        raise KeyError("render output lacks 'rgb_map_s' (render_rays_static returns it)")
    check_shape(outputs["rgb_map_s"], f"{' '.join(map(str, batch.target.shape))}", "outputs['rgb_map_s']")
    img_s_loss = img2mse(outputs["rgb_map_s"], batch.target)
    return static_loss_lambda * img_s_loss, {"psnr_s": mse2psnr(img_s_loss), "img_s_loss": img_s_loss}
