"""Tests of mononerf.losses: every term on hand-computed cases, the dynamic/static assembly, gates and quirks
(method.md §4.1-§4.3, §8.4, §8.9-§8.11)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from mononerf.geometry.cameras import Pinhole
from mononerf.config import parse_config_file
from mononerf.data.dataset import RayBatch
from mononerf.quirks import Quirks
from mononerf.losses import (
    DYNAMIC_LOG_KEYS,
    L1,
    L2,
    LossFlags,
    compute_depth_blending_loss,
    compute_depth_loss,
    compute_sf_smooth_loss,
    compute_sf_smooth_s_loss,
    dynamic_stage_losses,
    entropy,
    flow_temperature,
    img2mae,
    img2mse,
    induced_flow_loss,
    loss_weights,
    mask_losses_active,
    masked_mae_per_scene,
    mse2psnr,
    resolve_decay_iteration,
    static_stage_loss,
    term_weights,
)

D64 = torch.float64
ROOT = Path(__file__).resolve().parents[1]
EXP_CONF = (ROOT / "mononerf_conf/exp/Balloon1_Balloon2"
            / "dynamic_temporal_feat_static_mask_flow_loss_multiscenes_discrete2_addition.conf")
# The EXP conf's gates (method.md §7.1): every term on, blending band 0.03.
ALL_ON = LossFlags(use_depth_blending_loss=True, use_static_flow_loss=True, use_mask_flow_loss=True,
                   blending_thickness=0.03)


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=D64)


# ----------------------------------------------------------------------------------------------- fixtures (by hand)
def make_inputs(S=2, R=4, K=10, T=6, frames=(2, 3), seed=0, num_static=2):
    """Small random ret/batch with the renderer's key layout: per-ray (S, R[, 3]), per-sample (S, R, K[, 3])."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, lo=0.0, hi=1.0):
        return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=D64)

    def pts(*shape):  # NDC points: x, y in [-0.5, 0.5], z in [0, 0.9]
        p = rnd(*shape, 3, lo=-0.5, hi=0.5)
        p[..., 2] = rnd(*shape, lo=0.0, hi=0.9)
        return p

    z_vals = torch.linspace(0, 1, K, dtype=D64).expand(S, R, K).clone()
    blending = rnd(S, R, K, lo=0.05, hi=0.95)
    weights_d = torch.softmax(rnd(S, R, K, lo=-2, hi=2), -1) * 0.9
    ret = {
        "rgb_map_full": rnd(S, R, 3), "rgb_map_s": rnd(S, R, 3), "rgb_map_d": rnd(S, R, 3),
        "rgb_map_d_f": rnd(S, R, 3), "rgb_map_d_b": rnd(S, R, 3),
        "depth_map_d": rnd(S, R), "depth_map_s": rnd(S, R), "dynamicness_map": rnd(S, R),
        "weights_d": weights_d, "blending": blending, "blending_f": rnd(S, R, K), "blending_b": rnd(S, R, K),
        "blending_map": z_vals.clone() * blending, "z_vals": z_vals,
        "sceneflow_f": rnd(S, R, K, 3, lo=-0.1, hi=0.1), "sceneflow_b": rnd(S, R, K, 3, lo=-0.1, hi=0.1),
        "sceneflow_f_b": rnd(S, R, K, 3, lo=-0.1, hi=0.1), "sceneflow_b_f": rnd(S, R, K, 3, lo=-0.1, hi=0.1),
        "raw_pts": pts(S, R, K), "raw_pts_f": pts(S, R, K), "raw_pts_b": pts(S, R, K),
        "raw_pts_b_b": pts(S, R, K), "raw_pts_f_f": pts(S, R, K),
    }  # fmt: skip
    static_mask = torch.zeros(S, R, 1, dtype=D64)
    static_mask[:, :num_static] = 1.0
    grid = torch.cat([rnd(S, R, 2, lo=0, hi=8).floor(), rnd(S, R, 2, lo=-2, hi=2), (rnd(S, R, 1) > 0.3).to(D64),
                      rnd(S, R, 2, lo=-2, hi=2), (rnd(S, R, 1) > 0.3).to(D64)], -1)
    frame = torch.tensor(frames, dtype=torch.int64)
    batch = RayBatch(
        rays_o=rnd(S, R, 3), rays_d=rnd(S, R, 3), target=rnd(S, R, 3), static_mask=static_mask,
        invdepth=rnd(S, R, lo=0.5, hi=3.0), grid=grid, frame=frame, time=frame.to(D64) / T * 2 - 1,
        num_static=num_static,
    )
    c2w_all = torch.zeros(S, T, 3, 4, dtype=D64)
    c2w_all[..., :3, :3] = torch.eye(3, dtype=D64)
    c2w_all[..., :3, 3] = rnd(S, T, 3, lo=-0.2, hi=0.2)
    geo = dict(c2w_all=c2w_all, camera=Pinhole.centred(8, 10, t([5.0, 6.0])[:S]), num_frames=T)
    return ret, batch, geo


def run(ret, batch, geo, *, flags=ALL_ON, quirks=Quirks(), weights=loss_weights(), iteration=0):
    return dynamic_stage_losses(ret, batch, **geo, weights=weights, flags=flags, quirks=quirks, iteration=iteration)


# ------------------------------------------------------------------------------------------------------ basic terms
def test_img2mse_img2mae_masked_and_unmasked_by_hand():
    x = t([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]])  # (1, 2, 3)
    y = t([[[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]])  # |x - y|: ray0 [1, 2, 3], ray1 [4, 4, 4]
    m = t([[[1.0], [0.0]]])  # only ray 0
    # masked MAE: (1 + 2 + 3) / (1 + 1e-8) / 3 = 2
    assert img2mae(x, y, m).item() == pytest.approx(2.0, rel=1e-7)
    # masked MSE: (1 + 4 + 9) / 1 / 3 = 14/3
    assert img2mse(x, y, m).item() == pytest.approx(14 / 3, rel=1e-7)
    # unmasked: MAE (6 + 12) / 6 = 3; MSE (14 + 48) / 6
    assert img2mae(x, y).item() == pytest.approx(3.0)
    assert img2mse(x, y).item() == pytest.approx(62 / 6)
    # all-zero mask: 0 / (0 + 1e-8) = 0, no NaN
    assert img2mae(x, y, torch.zeros_like(m)).item() == 0.0


def test_l1_l2_and_psnr():
    x = t([-1.0, 2.0, -3.0, 4.0])
    assert L1(x).item() == pytest.approx(10 / 4)  # (1 + 2 + 3 + 4) / 4
    assert L2(x).item() == pytest.approx(30 / 4)  # (1 + 4 + 9 + 16) / 4
    assert mse2psnr(t(0.01)).item() == pytest.approx(20.0)  # -10 log10(1e-2)
    assert mse2psnr(t(1e-3)).item() == pytest.approx(30.0)
    assert mse2psnr(torch.tensor(0.25)).dtype == torch.float32  # follows the input, no device/global


def test_entropy_normalisation_both_ways():
    x = t([[[0.5, 0.5]], [[1.0, 0.25]]])  # (S=2, R=1, K=2)
    # Σ x ln x = 2 · 0.5 ln 0.5 + 1 · ln 1 + 0.25 ln 0.25 = -ln2 - 0.5 ln2 = -1.5 ln2
    assert entropy(x).item() == pytest.approx(1.5 * math.log(2) / 2)  # / (S · R) = 2
    assert entropy(x, batch_normalisation=False).item() == pytest.approx(1.5 * math.log(2) / 4)  # / numel = 4
    assert entropy(torch.zeros(2, 3, 4)).item() == 0.0  # 0 · log(1e-19) = 0, no NaN
    with pytest.raises(ValueError, match="at least 2 dims"):
        entropy(torch.ones(3))


def test_depth_loss_five_elements_by_hand():
    pred = t([[1.0, 2.0, 3.0, 4.0, 10.0]])
    gt = t([[0.0, 1.0, 2.0, 3.0, 4.0]])
    # pred: median 3, mean|pred - 3| = (2 + 1 + 0 + 1 + 7) / 5 = 2.2 (+1e-9)
    # gt:   median 2, mean|gt - 2|   = (2 + 1 + 0 + 1 + 2) / 5 = 1.2
    pn = [(v - 3) / (2.2 + 1e-9) for v in (1, 2, 3, 4, 10)]
    gn = [(v - 2) / 1.2 for v in (0, 1, 2, 3, 4)]
    expected = sum((a - b) ** 2 for a, b in zip(pn, gn)) / 5
    assert compute_depth_loss(pred, gt).item() == pytest.approx(expected, rel=1e-12)


def test_depth_loss_lower_median_jointly_over_scenes():
    # 4 elements over 2 scenes: the LOWER median of all of them, not per scene
    pred = t([[0.0, 10.0], [2.0, 1.0]])  # sorted 0, 1, 2, 10 -> lower median 1, MAD (1 + 9 + 1 + 0) / 4 = 2.75
    gt = t([[0.0, 1.0], [1.0, 0.0]])  # sorted 0, 0, 1, 1 -> lower median 0, MAD (0 + 1 + 1 + 0) / 4 = 0.5
    pn = [(v - 1) / (2.75 + 1e-9) for v in (0.0, 10.0, 2.0, 1.0)]
    gn = [(v - 0) / 0.5 for v in (0.0, 1.0, 1.0, 0.0)]
    expected = sum((a - b) ** 2 for a, b in zip(pn, gn)) / 4
    assert compute_depth_loss(pred, gt).item() == pytest.approx(expected, rel=1e-12)
    # invariant to scale and shift of either input, not to a sign flip
    assert compute_depth_loss(pred, 3 * pred + 7).item() == pytest.approx(0.0, abs=1e-12)
    assert compute_depth_loss(pred, -pred).item() > 1.0


# ------------------------------------------------------------------------------------ scene-flow smoothness terms
def test_sf_smooth_temporal_on_known_ndc_points():
    # H = W = 2, f = 1: world = (-x z, -y z, z) with z = 2 / (z_ndc - 1); NDC (0,0,0) -> (0,0,-2),
    # (0.5,0,0) -> (1,0,-2), (0,0,0.5) -> (0,0,-4).
    K = 10  # int(0.9 · 10) = 9 samples used
    pts = torch.zeros(1, 1, K, 3, dtype=D64)
    pts_f = pts.clone()
    pts_f[..., 0] = 0.5
    pts_b = pts.clone()
    pts_b[..., 2] = 0.5
    pts_f[..., 9, :] = 0.9  # the last 10% of the samples are ignored
    # (p_f - p) + (p_b - p) = (1, 0, 0) + (0, 0, -2) -> L1 = (1 + 0 + 2) / 3 = 1
    assert compute_sf_smooth_loss(pts, pts_f, pts_b, Pinhole.centred(2, 2, 1.0)).item() == pytest.approx(1.0)
    # without NDC: raw (0.5, 0, 0) + (0, 0, 0.5), L2 = (0.25 + 0.25) / 3
    assert compute_sf_smooth_loss(pts, pts_f, pts_b, Pinhole.centred(2, 2, 1.0), ndc=False).item() == pytest.approx(0.5 / 3)


def test_sf_smooth_spatial_on_known_ndc_points():
    K = 10  # int(0.95 · 10) = 9 samples used, 8 adjacent differences
    pts2 = torch.zeros(1, 1, K, 3, dtype=D64)  # world (0, 0, -2)
    pts1 = pts2.clone()
    pts1[..., 0] = 0.5 * torch.arange(K, dtype=D64)  # world x = -0.5k · (-2) = k
    pts1[..., 9, 0] = 100.0  # ignored
    # sf_k = (k, 0, 0); sf_k - sf_{k+1} = (-1, 0, 0) -> L1 = 1/3
    assert compute_sf_smooth_s_loss(pts1, pts2, Pinhole.centred(2, 2, 1.0)).item() == pytest.approx(1 / 3)
    # per-scene intrinsics: scene 1 with W = 4 doubles x -> differences (-2, 0, 0)
    two = torch.cat([pts1, pts1], 0), torch.cat([pts2, pts2], 0)
    assert compute_sf_smooth_s_loss(*two, Pinhole.centred(2, t([2.0, 4.0]), t([1.0, 1.0]))).item() == pytest.approx((1 + 2) / 6)


# ---------------------------------------------------------------------------------------- depth-blending term
def _blending_case():
    invdepth = t([[2.0, 4.0, 3.0]])  # (S=1, R=3)
    z_vals = t([0.0, 0.5, 1.0]).expand(1, 3, 3).clone()
    blending_map = torch.full((1, 3, 3), 0.5, dtype=D64)
    mask = t([[[1.0], [0.0], [1.0]]])  # ray 1 is static
    return invdepth, z_vals, blending_map, mask


@pytest.mark.parametrize("in_place", [True, False])
def test_depth_blending_three_sample_rays_by_hand(in_place):
    invdepth, z_vals, blending_map, mask = _blending_case()
    inv0, z0 = invdepth.clone(), z_vals.clone()
    loss = compute_depth_blending_loss(invdepth, z_vals, blending_map, near=0.0, far=1.0, min_depth=invdepth.max(),
                                       max_depth=invdepth.min(), mask=mask, thickness=0.1, in_place=in_place)
    # g = (inv - 4) / (2 - 4) = [1, 0, 0.5]; targets (|z - g| <= 0.1 keeps z): ray0 [0, 0, 1], ray1 [0, 0, 0],
    # ray2 [0, 0.5, 0]. Masked rays 0 and 2 vs blending 0.5:
    # ray0 0.25 + 0.25 + 0.25 = 0.75; ray2 0.25 + 0 + 0.25 = 0.5 -> 1.25 / 2 rays / 3 samples
    assert loss.item() == pytest.approx(1.25 / 6, rel=1e-7)
    if in_place:
        assert torch.equal(invdepth, t([[1.0, 0.0, 0.5]]))  # the caller's tensor is rewritten
        assert torch.equal(z_vals, t([[[0, 0, 1.0], [0, 0, 0], [0, 0.5, 0]]]))  # z_vals became the target
    else:
        assert torch.equal(invdepth, inv0) and torch.equal(z_vals, z0)


def test_depth_blending_in_place_with_other_bounds():
    invdepth, z_vals, blending_map, mask = _blending_case()
    compute_depth_blending_loss(invdepth, z_vals, blending_map, near=0.5, far=1.0, min_depth=invdepth.max(),
                                max_depth=invdepth.min(), mask=mask, thickness=0.1, in_place=True)
    # (inv - 4) / (2 - 4) · (1.0 - 0.5) + 0.5 = [1, 0.5, 0.75]
    assert torch.equal(invdepth, t([[1.0, 0.5, 0.75]]))


def test_depth_blending_defaults_and_bad_shapes():
    invdepth, z_vals, blending_map, _ = _blending_case()
    # defaults min/max = inv.min()/.max(): g = (inv - 2) / 2 = [0, 1, 0.5]; no mask -> plain mean over 9
    # targets ray0 [0, 0, 0], ray1 [0, 0, 1], ray2 [0, 0.5, 0] vs 0.5: (0.75 + 0.75 + 0.5) / 9
    loss = compute_depth_blending_loss(invdepth, z_vals, blending_map, near=0.0, far=1.0, thickness=0.1,
                                       in_place=False)
    assert loss.item() == pytest.approx(2.0 / 9)
    with pytest.raises(ValueError, match="gt_invdepth"):
        compute_depth_blending_loss(invdepth[:, :2], z_vals, blending_map, near=0.0, far=1.0)


# --------------------------------------------------------------------------------------------- induced flow term
def test_induced_flow_loss_by_hand():
    # identity poses, H = W = 2, f = 1, all weight on sample 0; pixel (0, 0), GT flow 0, mask 1.
    # scene 0: NDC (0, 0, 0) -> world (0, 0, -2) -> pixel (0/2 · 1 + 1, 1) = (1, 1): MAE (1 + 1) / 2 = 1
    # scene 1: NDC (0.5, 0, 0) -> world (1, 0, -2) -> pixel (1/2 + 1, 1) = (1.5, 1): MAE 1.25
    S, R, K = 2, 3, 4
    pts = torch.zeros(S, R, K, 3, dtype=D64)
    pts[1, :, 0, 0] = 0.5
    weights = torch.zeros(S, R, K, dtype=D64)
    weights[..., 0] = 1.0
    c2w = torch.cat([torch.eye(3, dtype=D64), torch.zeros(3, 1, dtype=D64)], 1).expand(S, 3, 4)
    zeros2 = torch.zeros(S, R, 2, dtype=D64)
    mask = torch.ones(S, R, 1, dtype=D64)
    per_scene = induced_flow_loss(pts, weights, c2w, Pinhole.centred(2, 2, t([1.0, 1.0])), zeros2, zeros2, mask)
    assert per_scene.tolist() == pytest.approx([1.0, 1.25])
    # the mask selects rays: only ray 0 of scene 0 counted, with GT (1, 0) -> |0| + |1| over 2 channels
    gt = zeros2.clone()
    gt[0, 0] = t([1.0, 0.0])
    mask[0, 1:] = 0.0
    assert induced_flow_loss(pts, weights, c2w, Pinhole.centred(2, 2, 1.0), zeros2, gt, mask)[0].item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="mask"):
        masked_mae_per_scene(zeros2, zeros2, mask[..., 0])


# ------------------------------------------------------------------------------------------------ dynamic stage
def test_total_is_weighted_sum_of_logs_with_original_lambdas():
    ret, batch, geo = make_inputs()
    total, logs = run(ret, batch, geo)
    assert list(logs) == [k for k in DYNAMIC_LOG_KEYS if k in logs]  # the original's order
    assert set(DYNAMIC_LOG_KEYS) == set(logs)  # frames 2, 3 of 6: every term present
    lam = {"img_loss": 3.0, "img_d_loss": 1.0, "img_d_f_loss": 1.0, "img_d_b_loss": 1.0, "flow_f_loss": 0.02,
           "flow_b_loss": 0.02, "slow_loss": 0.01, "smooth_loss": 0.1, "sp_smooth_loss": 0.1,
           "consistency_loss": 1.0, "mask_loss": 0.1, "sparse_loss": 0.001, "depth_blending_loss": 1.0,
           "static_flow_loss": 0.5, "mask_flow_loss": 0.1, "depth_loss": 0.04, "order_loss": 0.1,
           "sf_smooth_loss": 0.1}  # fmt: skip
    expected = sum(w * logs[k].item() for k, w in lam.items())
    assert total.item() == pytest.approx(expected, rel=1e-12)
    assert term_weights(loss_weights(), ALL_ON, iteration=0, num_frames=6) == pytest.approx(lam)
    assert logs["sparse_loss"].item() == pytest.approx(logs["sparse_weights_d_loss"].item()
                                                       + logs["sparse_blending_loss"].item())
    assert logs["psnr"].item() == pytest.approx(-10 * math.log10(logs["img_loss"].item()))
    assert all(torch.isfinite(v) for v in logs.values())


def test_simple_terms_by_hand():
    ret, batch, geo = make_inputs(S=1, R=4, frames=(2,), num_static=2)
    shape = ret["blending"].shape
    ret.update(blending=torch.full(shape, 0.2, dtype=D64), dynamicness_map=torch.full((1, 4), 0.3, dtype=D64),
               sceneflow_f=torch.full(shape + (3,), 0.1, dtype=D64), sceneflow_b=torch.full(shape + (3,), -0.2,
                                                                                            dtype=D64),
               sceneflow_f_b=torch.full(shape + (3,), -0.1, dtype=D64),
               sceneflow_b_f=torch.full(shape + (3,), 0.1, dtype=D64),
               blending_f=torch.full(shape, 0.4, dtype=D64), blending_b=torch.full(shape, 0.6, dtype=D64),
               depth_map_d=t([[0.5, 0.5, 0.9, 0.1]]), depth_map_s=t([[0.2, 0.2, 0.0, 0.0]]))
    geo["camera"] = Pinhole.centred(8, 10, 5.0)
    _, logs = run(ret, batch, geo)
    # mask: L1(blending on the 2 static rays) = 0.2; dynamicness 0.3 vs Md [0, 0, 1, 1]: (0.3+0.3+0.7+0.7)/4 = 0.5
    assert logs["mask_loss"].item() == pytest.approx(0.7)
    assert logs["slow_loss"].item() == pytest.approx(0.3)  # 0.1 + 0.2
    assert logs["consistency_loss"].item() == pytest.approx(0.1)  # |0.1 - 0.1| + |-0.2 + 0.1|
    assert logs["static_flow_loss"].item() == pytest.approx(0.05)  # 0.2² + 0.1² on rays [:2]
    assert logs["mask_flow_loss"].item() == pytest.approx(1.0)  # 0.4 + 0.6
    assert logs["order_loss"].item() == pytest.approx(0.09)  # (0.5 - 0.2)² on the static rays only


def test_depth_target_in_place_quirk_both_ways():
    for in_place in (True, False):
        ret, batch, geo = make_inputs(seed=3)
        inv0 = batch.invdepth.clone()
        depth_d = ret["depth_map_d"].clone()
        _, logs = run(ret, batch, geo, quirks=Quirks(depth_target_in_place=in_place))
        rewritten = (inv0.max() - inv0) / (inv0.max() - inv0.min())  # the #14 target: grows with distance
        if in_place:
            assert torch.allclose(batch.invdepth, rewritten, atol=1e-15)  # the caller's tensor changed
            expected = compute_depth_loss(depth_d, -rewritten)
            assert (ret["z_vals"] == 0).any()  # z_vals zeroed outside the band
        else:
            assert torch.equal(batch.invdepth, inv0)
            expected = compute_depth_loss(depth_d, -inv0)
            assert torch.equal(ret["z_vals"], torch.linspace(0, 1, 10, dtype=D64).expand_as(ret["z_vals"]))
        assert logs["depth_loss"].item() == pytest.approx(expected.item(), rel=1e-12)
    # the two targets differ in sign of ordering, so the losses differ
    a = compute_depth_loss(depth_d, -rewritten).item()
    b = compute_depth_loss(depth_d, -inv0).item()
    assert abs(a - b) > 0.1
    # without #14 the disparity is never touched, whatever the quirk
    ret, batch, geo = make_inputs(seed=3)
    run(ret, batch, geo, flags=dataclasses.replace(ALL_ON, use_depth_blending_loss=False))
    assert torch.equal(batch.invdepth, inv0)


def _frame_case(frames):
    ret, batch, geo = make_inputs(frames=frames, T=6)
    # rgb_map_d_f = target + 0.1 (scene 0) / + 0.3 (scene 1): per-scene MSE 0.01 / 0.09, both 0.05
    off = t([0.1, 0.3])[:, None, None]
    ret["rgb_map_d_f"] = batch.target + off
    ret["rgb_map_d_b"] = batch.target + off
    return ret, batch, geo


def test_frame_gating_leak_both_ways():
    leak, fixed = Quirks(), Quirks(frame_gating_leak=False)
    # scene 0 on the LAST frame (no t+1), scene 1 in the middle
    _, logs = run(*_frame_case((5, 3)), quirks=leak)  # the last scene (frame 3) decides: both scenes count
    assert logs["img_d_f_loss"].item() == pytest.approx(0.05)
    _, logs = run(*_frame_case((5, 3)), quirks=fixed)  # scene 0 has no t+1: scene 1 only
    assert logs["img_d_f_loss"].item() == pytest.approx(0.09)
    assert logs["img_d_b_loss"].item() == pytest.approx(0.05)
    # scene 1 on the last frame: with the leak NO scene gets the t+1 term; fixed: scene 0 keeps it
    _, logs = run(*_frame_case((3, 5)), quirks=leak)
    assert "img_d_f_loss" not in logs and "psnr_d_f" not in logs
    _, logs = run(*_frame_case((3, 5)), quirks=fixed)
    assert logs["img_d_f_loss"].item() == pytest.approx(0.01)
    assert logs["psnr_d_f"].item() == pytest.approx(20.0)
    # frame 0: no t-1 term
    _, logs = run(*_frame_case((2, 0)), quirks=leak)
    assert "img_d_b_loss" not in logs
    _, logs = run(*_frame_case((2, 0)), quirks=fixed)
    assert logs["img_d_b_loss"].item() == pytest.approx(0.01)


def test_flow_losses_scene_sum_or_mean_and_neighbour_frames():
    ret, batch, geo = make_inputs(frames=(2, 3))
    ref = {}
    for key, pts_key, step, gt in (("f", "raw_pts_f", 1, slice(2, 5)), ("b", "raw_pts_b", -1, slice(5, 8))):
        c2w = torch.stack([geo["c2w_all"][s, int(batch.frame[s]) + step] for s in range(2)])
        ref[key] = [induced_flow_loss(ret[pts_key][s:s + 1], ret["weights_d"][s:s + 1], c2w[s:s + 1],
                                      geo["camera"].select([s]), batch.grid[s:s + 1, :, 0:2], batch.grid[s:s + 1, :, gt][..., :2],
                                      batch.grid[s:s + 1, :, gt][..., 2:]).item() for s in range(2)]
    _, summed = run(ret, batch, geo)
    _, mean = run(ret, batch, geo, quirks=Quirks(flow_loss_scene_sum=False))
    assert summed["flow_f_loss"].item() == pytest.approx(sum(ref["f"]), rel=1e-12)
    assert summed["flow_b_loss"].item() == pytest.approx(sum(ref["b"]), rel=1e-12)
    assert mean["flow_f_loss"].item() == pytest.approx(sum(ref["f"]) / 2, rel=1e-12)
    # scene 1 on the last frame has no forward flow: only scene 0 counts (sum = mean = its value)
    ret2, batch2, geo2 = make_inputs(frames=(2, 5))
    _, logs = run(ret2, batch2, geo2)
    _, logs_mean = run(ret2, batch2, geo2, quirks=Quirks(flow_loss_scene_sum=False))
    assert logs["flow_f_loss"].item() == pytest.approx(logs_mean["flow_f_loss"].item())
    assert logs["flow_b_loss"].item() == pytest.approx(2 * logs_mean["flow_b_loss"].item())
    # the neighbour pose really matters: moving frame 3 of scene 0 changes flow_f only
    geo3 = dict(geo2, c2w_all=geo2["c2w_all"].clone())
    geo3["c2w_all"][0, 3, :, 3] += 0.5
    _, moved = run(ret2, batch2, geo3)
    assert moved["flow_f_loss"].item() != pytest.approx(logs["flow_f_loss"].item())
    assert moved["flow_b_loss"].item() == pytest.approx(logs["flow_b_loss"].item())


def test_img_s_loss_scene_slice_both_ways():
    ret, batch, geo = make_inputs(S=2, R=4, num_static=2)
    batch.static_mask[:] = 1.0  # make the difference visible: every ray masked in
    err = t([0.1, 0.1, 0.5, 0.5])[None, :, None]
    ret["rgb_map_s"] = batch.target + err
    _, logs = run(ret, batch, geo)  # [:2] slices the 2 scenes: all rays, (0.01·2 + 0.25·2) / 4 = 0.13
    assert logs["img_s_loss"].item() == pytest.approx(0.13)
    _, logs = run(ret, batch, geo, quirks=Quirks(img_s_loss_scene_slice=False))  # rays [:2]: 0.01
    assert logs["img_s_loss"].item() == pytest.approx(0.01)


def test_entropy_quirk_in_total():
    ret, batch, geo = make_inputs()
    _, a = run(ret, batch, geo)
    _, b = run(*make_inputs(), quirks=Quirks(entropy_batch_normalisation=False))
    assert a["sparse_weights_d_loss"].item() == pytest.approx(10 * b["sparse_weights_d_loss"].item())  # K = 10


@pytest.mark.parametrize(
    "flag, keys",
    [
        ("use_feat_consistency", ("img_d_f_loss", "img_d_b_loss", "psnr_d_f", "psnr_d_b")),
        ("use_flow", ("flow_f_loss", "flow_b_loss", "slow_loss", "smooth_loss", "sp_smooth_loss", "consistency_loss")),
        ("use_depth_blending_loss", ("depth_blending_loss",)),
        ("use_static_flow_loss", ("static_flow_loss",)),
        ("use_mask_flow_loss", ("mask_flow_loss",)),
    ],
)
def test_gates_remove_their_terms(flag, keys):
    quirks = Quirks(depth_target_in_place=False)  # keep #17 independent of #14 here
    total_on, on = run(*make_inputs(), quirks=quirks)
    total_off, off = run(*make_inputs(), flags=dataclasses.replace(ALL_ON, **{flag: False}), quirks=quirks)
    assert all(k in on for k in keys) and not any(k in off for k in keys)
    assert set(on) - set(off) == set(keys)
    w = term_weights(loss_weights(), ALL_ON, iteration=0, num_frames=6)
    removed = sum(w.get(k, 0.0) * on[k].item() for k in keys)
    assert total_on.item() - total_off.item() == pytest.approx(removed, rel=1e-9)
    assert removed > 0


def test_unseen_frame_mode_without_pretrain():
    flags = dataclasses.replace(ALL_ON, use_unseen_frame_pretrain=False)
    total, logs = run(*make_inputs(), flags=flags)
    assert not {"img_s_loss", "psnr_s", "img_loss", "psnr"} & set(logs)
    assert term_weights(loss_weights(), flags, iteration=0, num_frames=6)["img_d_loss"] == 3.0  # full_loss_lambda
    w = term_weights(loss_weights(), flags, iteration=0, num_frames=6)
    assert total.item() == pytest.approx(sum(w[k] * v.item() for k, v in logs.items() if k in w), rel=1e-12)


def test_lambda_decay_schedule():
    flags = dataclasses.replace(ALL_ON, use_lambda_decay=True, decay_iteration=1)
    assert [flow_temperature(i, flags, 6) for i in (0, 999, 1000, 2500)] == [1.0, 1.0, 0.1, 0.01]
    assert mask_losses_active(999, flags, 6) and not mask_losses_active(1000, flags, 6)
    assert flow_temperature(10**6, ALL_ON, 6) == 1.0 and mask_losses_active(10**6, ALL_ON, 6)  # no decay
    assert resolve_decay_iteration(None, 12) == 25 and resolve_decay_iteration(None, 40) == 40
    assert flow_temperature(25000, dataclasses.replace(flags, decay_iteration=None), 12) == 0.1  # max(25, 12)
    quirks = Quirks(depth_target_in_place=False)
    early, logs = run(*make_inputs(), flags=flags, quirks=quirks, iteration=500)
    late, _ = run(*make_inputs(), flags=flags, quirks=quirks, iteration=1500)
    # after 1000 steps: flow weight 0.02 -> 0.002, mask and mask-flow losses no longer count (still logged)
    drop = (0.02 - 0.002) * (logs["flow_f_loss"] + logs["flow_b_loss"]) + 0.1 * logs["mask_loss"] \
        + 0.1 * logs["mask_flow_loss"]
    assert early.item() - late.item() == pytest.approx(drop.item(), rel=1e-9)
    with pytest.raises(ValueError, match="decay_iteration"):
        flow_temperature(5, dataclasses.replace(flags, decay_iteration=0), 6)


def test_blending_warmup_leaves_the_blending_terms_out():
    # train.blending_warmup steps: #2, #12, #14, #16 and the blending half of #13 do not count; the entropy of the
    # dynamic weights counts alone with the sparse λ
    on = term_weights(loss_weights(), ALL_ON, iteration=0, num_frames=6)
    off = term_weights(loss_weights(), ALL_ON, iteration=0, num_frames=6, train_blending=False)
    gone = {"img_loss", "mask_loss", "mask_flow_loss", "depth_blending_loss", "sparse_loss"}
    assert set(on) - set(off) == gone and set(off) - set(on) == {"sparse_weights_d_loss"}
    assert off["sparse_weights_d_loss"] == on["sparse_loss"] == 0.001
    assert all(off[k] == on[k] for k in set(off) & set(on))


def test_a_new_term_with_a_weight_of_its_own_is_one_table_entry(monkeypatch):
    # what docs/architecture.md promises: a row in TERMS (its function, gate, render outputs and Weight) is all the
    # loss assembly needs; the λ is read from the config by the key the row names
    from mononerf.losses import TERMS, WEIGHT_KEYS, LossWeights, Term, Weight

    def _extra(x):
        return {"extra_loss": x.outputs["blending"].mean()}

    monkeypatch.setattr("mononerf.losses.total.TERMS", TERMS + (
        Term(("extra_loss",), _extra, "use_flow", ("blending",), {"extra_loss": Weight("train.feature_loss_lambda")}),))
    cfg = parse_config_file(str(EXP_CONF)).with_overrides({"train.feature_loss_lambda": 0.25})
    weights = LossWeights.from_conf(cfg, WEIGHT_KEYS + ("train.feature_loss_lambda",))
    ret, batch, geo = make_inputs()
    with_it, logs = run(ret, batch, geo, weights=weights)
    assert "extra_loss" in logs
    monkeypatch.undo()
    without, _ = run(*make_inputs(), weights=weights)
    assert with_it.item() - without.item() == pytest.approx(0.25 * logs["extra_loss"].item(), rel=1e-9)
    _, gated = run(*make_inputs(), weights=weights, flags=dataclasses.replace(ALL_ON, use_flow=False))
    assert "extra_loss" not in gated
    with pytest.raises(ValueError, match="does not write"):
        Term(("a_loss",), _extra, weights={"b_loss": Weight(None)})
    with pytest.raises(KeyError, match="no loss weight train.feature_loss_lambda"):
        Weight("train.feature_loss_lambda").value(loss_weights(), ALL_ON, temperature=1.0, mask_on=True,
                                                  train_blending=True)


def test_every_weight_key_of_the_table_is_a_loss_key_of_the_key_table():
    from mononerf.config.schema import KEYS, LOSS_TERMS
    from mononerf.losses import WEIGHT_KEYS

    assert all(k in KEYS and KEYS[k].used == LOSS_TERMS for k in WEIGHT_KEYS)
    read_by_terms = {k for k, key in KEYS.items() if key.used == LOSS_TERMS and k.endswith("_loss_lambda")}
    assert read_by_terms == set(WEIGHT_KEYS)  # no weight key the terms claim to read but do not


def test_gradients_reach_the_right_outputs():
    ret, batch, geo = make_inputs()
    no_grad = {"z_vals", "raw_pts"}  # sample positions: not network outputs
    for k, v in ret.items():
        if k not in no_grad:
            v.requires_grad_(True)
    total, _ = run(ret, batch, geo)
    total.backward()
    for k in ("rgb_map_full", "rgb_map_d", "rgb_map_d_f", "rgb_map_d_b", "sceneflow_f", "sceneflow_b",
              "sceneflow_f_b", "sceneflow_b_f", "blending", "blending_f", "blending_b", "blending_map", "weights_d",
              "dynamicness_map", "depth_map_d", "raw_pts_f", "raw_pts_b", "raw_pts_f_f", "raw_pts_b_b"):
        assert ret[k].grad is not None and ret[k].grad.abs().sum() > 0, k
    assert ret["depth_map_s"].grad is None  # order loss uses depth_map_s.detach() (§4.3 #18)
    assert ret["rgb_map_s"].grad is None  # img_s_loss is logged only


def test_missing_keys_and_bad_shapes_are_named():
    ret, batch, geo = make_inputs()
    del ret["blending_f"]
    with pytest.raises(KeyError, match="blending_f"):
        run(ret, batch, geo)
    run(ret, batch, geo, flags=dataclasses.replace(ALL_ON, use_mask_flow_loss=False))  # not needed when off
    ret, batch, geo = make_inputs()
    with pytest.raises(ValueError, match="c2w_all"):
        run(ret, batch, dict(geo, c2w_all=geo["c2w_all"][0]))
    with pytest.raises(ValueError, match="fx must be a number or hold one value per scene"):
        run(ret, batch, dict(geo, camera=Pinhole.centred(8, 10, t([1.0, 2.0, 3.0]))))


def test_with_the_renderer_and_backward_through_in_place_target():
    """The real renderer's outputs: the in-place #14 must not break autograd (z_vals is a fresh copy)."""
    from mononerf.render.renderer import RayBundle, render_rays_dynamic

    torch.manual_seed(0)
    S, R, K, T = 2, 6, 8, 6
    lin_s, lin_d = torch.nn.Linear(4, 5).double(), torch.nn.Linear(4, 11).double()

    def joint_fn(pts_ref, viewdirs):
        return lin_s(pts_ref), dynamic_fn(pts_ref, viewdirs)

    def dynamic_fn(pts_ref, viewdirs):
        raw = lin_d(pts_ref)
        pts = pts_ref[..., :3]
        return torch.cat([raw[..., :4], pts + 0.01 * torch.tanh(raw[..., 4:7]),
                          pts + 0.01 * torch.tanh(raw[..., 7:10]), torch.sigmoid(raw[..., 10:11])], -1)

    origins = torch.cat([0.2 * torch.randn(S, R, 2, dtype=D64), -torch.ones(S, R, 1, dtype=D64)], -1)
    directions = torch.cat([0.05 * torch.randn(S, R, 2, dtype=D64), 2 * torch.ones(S, R, 1, dtype=D64)], -1)
    _, batch, geo = make_inputs(S=S, R=R, K=K, T=T, num_static=3)
    ret = render_rays_dynamic(RayBundle(origins, directions, directions), 0.0, 1.0, batch.time, n_samples=K,
                              num_frames=T, joint_fn=joint_fn, dynamic_fn=dynamic_fn, raw_noise_std=0.0)
    inv0 = batch.invdepth.clone()
    total, logs = run(ret, batch, geo, flags=dataclasses.replace(ALL_ON, blending_thickness=0.3))
    assert set(logs) == set(DYNAMIC_LOG_KEYS) and torch.isfinite(total)
    assert not torch.equal(batch.invdepth, inv0)  # rewritten by #14 (quirk on)
    total.backward()
    assert lin_d.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------- static stage
def test_static_stage_loss_by_hand():
    target = torch.zeros(2, 3, 3, dtype=D64)
    batch = RayBatch(rays_o=target, rays_d=target, target=target, static_mask=torch.ones(2, 3, 1, dtype=D64),
                     invdepth=torch.ones(2, 3, dtype=D64), grid=torch.zeros(2, 3, 8, dtype=D64),
                     frame=torch.zeros(2, dtype=torch.int64), time=torch.zeros(2, dtype=D64), num_static=3)
    rgb = torch.full((2, 3, 3), 0.1, dtype=D64, requires_grad=True)
    total, logs = static_stage_loss({"rgb_map_s": rgb}, batch, 2.0)
    assert set(logs) == {"psnr_s", "img_s_loss"}
    assert logs["img_s_loss"].item() == pytest.approx(0.01)  # 0.1²
    assert logs["psnr_s"].item() == pytest.approx(20.0)
    assert total.item() == pytest.approx(0.02)  # λ = 2
    total.backward()
    assert rgb.grad.abs().sum() > 0
    with pytest.raises(KeyError, match="rgb_map_s"):
        static_stage_loss({}, batch, 1.0)


# -------------------------------------------------------------------------------------------------------- config
def test_from_conf_reads_the_exp_conf():
    cfg = parse_config_file(str(EXP_CONF))
    w, f, q = loss_weights(cfg), LossFlags.from_conf(cfg), Quirks.from_conf(cfg)
    assert w.values == {"train.full_loss_lambda": 3.0, "train.dynamic_loss_lambda": 1.0,
                        "train.depth_loss_lambda": 0.04, "train.order_loss_lambda": 0.1,
                        "info.flow_loss_lambda": 0.02, "info.slow_loss_lambda": 0.01,
                        "train.smooth_loss_lambda": 0.1, "train.consistency_loss_lambda": 1.0,
                        "train.mask_loss_lambda": 0.1, "train.sparse_loss_lambda": 0.001,
                        "info.static_flow_loss_lambda": 0.5, "info.mask_flow_loss_lambda": 0.1}
    assert f.use_depth_blending_loss and f.use_static_flow_loss and f.use_mask_flow_loss
    assert f.blending_thickness == 0.03 and f.ndc and f.use_unseen_frame_pretrain and not f.use_lambda_decay
    assert q == Quirks()
    cfg2 = cfg.with_overrides({"info.mask_flow_loss_lambda": None, "train.mask_loss_lambda": 0.3,
                               "quirks.frame_gating_leak": False})
    assert term_weights(loss_weights(cfg2), ALL_ON, iteration=0, num_frames=6)["mask_flow_loss"] == 0.3  # null = mask
    assert Quirks.from_conf(cfg2).frame_gating_leak is False
    assert LossFlags.from_conf(cfg.with_overrides({"info.decay_iteration": None})).decay_iteration is None
    assert LossFlags.from_conf(cfg.with_overrides({"info.decay_iteration": None}), num_frames=40).decay_iteration == 40
    truck = parse_config_file(str(ROOT / "mononerf_conf/exp/quarter_frame_training/Truck.conf"))
    assert LossFlags.from_conf(truck).use_unseen_frame_pretrain is False
    assert loss_weights(truck)["info.mask_flow_loss_lambda"] == 0.01
