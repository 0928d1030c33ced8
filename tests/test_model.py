"""Model pieces (method.md §2): embedder, heads, trajectories, feature lookup, the MonoNeRF wiring and its quirks."""

from __future__ import annotations

import math
import types

import pytest
import torch
from torch import nn

from mononerf.geometry.cameras import Pinhole
from mononerf.models.embedder import PositionalEncoding, drop_time_terms
from mononerf.models.encoders import SpatialTemporalEncoder
from mononerf.models.features import sample_frame_features, temporal_features
from mononerf.models.heads import DynamicHead, StaticHead, linear_split
from mononerf.models.mononerf import MonoNeRF
from mononerf.models.projected import Workspace, fold_latent_projections
from mononerf.models.spatial_encoder import SpatialEncoder
from mononerf.models.trajectory import (
    INTEGRATORS,
    EulerSteps,
    NeuralODE,
    VelocityField,
    integrator_from_conf,
)
from mononerf.quirks import Quirks
from mononerf.render.images import prepare_rays
from mononerf.render.renderer import render_rays_dynamic, render_rays_static

torch.set_num_threads(2)


def discrete_trajectory(head, emb, xyz, tau, n, g, steps=2, branch_mixup=True):
    """The Euler integrator over the head's velocity field (what MonoNeRF's dynamic pass calls)."""
    return EulerSteps(steps, branch_mixup)(VelocityField(head, emb, n, g), xyz, tau)


def ode_trajectory(head, emb, xyz, tau, n, g):
    return NeuralODE()(VelocityField(head, emb, n, g), xyz, tau)


# ------------------------------------------------------------------------------------------------ embedder
def test_embedder_layout_and_width():
    emb = PositionalEncoding(4, 10)
    assert emb.d_out == 84 and PositionalEncoding(3, 4).d_out == 27
    x = torch.tensor([[0.1, -0.2, 0.3, 0.5]])
    y = emb(x)
    assert y.shape == (1, 84)
    torch.testing.assert_close(y[0, :4], x[0])
    torch.testing.assert_close(y[0, 4:8], torch.sin(x[0]))          # f0 = 1, no pi
    torch.testing.assert_close(y[0, 8:12], torch.cos(x[0]))
    torch.testing.assert_close(y[0, 12:16], torch.sin(2 * x[0]))    # f1 = 2
    torch.testing.assert_close(y[0, -4:], torch.cos(512 * x[0]))    # f9 = 2^9


def test_static_input_drops_every_time_term():
    x = torch.rand(5, 4)
    dropped = drop_time_terms(PositionalEncoding(4, 10)(x))
    assert dropped.shape == (5, 63)
    torch.testing.assert_close(dropped, PositionalEncoding(3, 10)(x[:, :3]))


# ------------------------------------------------------------------------------------------------ heads
def test_linear_split_equals_concatenation():
    layer = nn.Linear(7 + 3, 5)
    x, g = torch.randn(2, 11, 7), torch.randn(2, 3)
    ref = layer(torch.cat([x, g[:, None].expand(-1, 11, -1)], -1))
    torch.testing.assert_close(linear_split(layer, x, g), ref)


def _dyn_inputs(s=2, p=9, c=16):
    return (torch.randn(s, p, 84), torch.randn(s, p, 27), torch.randn(s, p, c), torch.randn(s, 8),
            torch.randn(s, p, 6), torch.randn(s, p, 2, c))


def test_dynamic_head_shapes_and_passthrough():
    head = DynamicHead(d_latent=16, d_global=8, d_flow_latent=32, d_hidden=32)
    pts, views, lat, g, sf, lt = _dyn_inputs()
    out = head(pts, views, lat, g, sf, lt)
    assert out.shape == (2, 9, 11)
    torch.testing.assert_close(out[..., 4:10], sf)                  # trajectory positions passed through
    assert ((out[..., 10] > 0) & (out[..., 10] < 1)).all()          # blending is a sigmoid
    # temporal features enter the output
    assert not torch.allclose(head(pts, views, lat, g, sf, lt + 1.0), out)
    # flow_guided_feat=False zeroes the latent contribution
    off = DynamicHead(d_latent=16, d_global=8, d_flow_latent=32, d_hidden=32, flow_guided_feat=False)
    off.load_state_dict(head.state_dict())
    torch.testing.assert_close(off(pts, views, lat, g, sf, lt), off(pts, views, lat * 0 + 5, g, sf, lt * 3))


@pytest.mark.parametrize("kwargs", [dict(use_viewdirs=True), dict(feature_fuse_mode="concat"),
                                    dict(use_temporal_feature=False), dict(use_spade=True)])
def test_dynamic_head_variants(kwargs):
    head = DynamicHead(d_latent=16, d_global=8, d_flow_latent=32, d_hidden=32, **kwargs)
    pts, views, lat, g, sf, lt = _dyn_inputs()
    assert head(pts, views, lat, g, sf, lt).shape == (2, 9, 11)


def test_dynamic_head_rejects_unknown_fuse_mode():
    with pytest.raises(ValueError, match="feature_fuse_mode"):
        DynamicHead(feature_fuse_mode="product")


def test_static_head_shapes_and_view_dependence():
    head = StaticHead(d_latent=16, d_hidden=32)
    pts, views, lat = torch.randn(2, 9, 63), torch.randn(2, 9, 27), torch.randn(2, 9, 16)
    out = head(pts, views, lat)
    assert out.shape == (2, 9, 5)
    assert not torch.allclose(head(pts, views + 1, lat)[..., :3], out[..., :3])   # rgb depends on view
    torch.testing.assert_close(head(pts, views + 1, lat)[..., 3], out[..., 3])     # sigma does not


# ------------------------------------------------------------------------------------------------ trajectories
def _constant_velocity_head(v):
    """A head whose velocity field is the constant ``v`` (zero weights, bias atanh(v))."""
    head = DynamicHead(d_latent=16, d_global=8, d_flow_latent=32, d_hidden=32)
    with torch.no_grad():
        head.sf_linear.weight.zero_()
        head.sf_linear.bias.copy_(torch.atanh(torch.tensor(v)))
    return head


@pytest.mark.parametrize("mixup", [True, False])
def test_constant_velocity_moves_points_linearly_in_both_modes(mixup):
    v = [0.2, -0.1, 0.05]
    head, emb = _constant_velocity_head(v), PositionalEncoding(4, 10)
    xyz, tau, g = torch.rand(2, 7, 3), torch.full((2, 7), 3.0), torch.randn(2, 8)
    v_t = torch.tensor(v)
    for steps in (1, 2, 4):
        xb, xf = discrete_trajectory(head, emb, xyz, tau, 12, g, steps=steps, branch_mixup=mixup)
        torch.testing.assert_close(xf, xyz + v_t)
        torch.testing.assert_close(xb, xyz - v_t)
    ob, of = ode_trajectory(head, emb, xyz, tau, 12, g)
    torch.testing.assert_close(of, xyz + v_t, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ob, xyz - v_t, atol=1e-5, rtol=1e-5)


def test_branch_mixup_quirk_changes_the_forward_branch_only_with_global_blocks():
    torch.manual_seed(0)
    head, emb = DynamicHead(d_latent=16, d_global=8, d_flow_latent=32, d_hidden=32), PositionalEncoding(4, 10)
    xyz, tau, g = torch.rand(2, 7, 3) - 0.5, torch.full((2, 7), 4.0), torch.randn(2, 8)
    xb_q, xf_q = discrete_trajectory(head, emb, xyz, tau, 12, g, steps=2, branch_mixup=True)
    xb_p, xf_p = discrete_trajectory(head, emb, xyz, tau, 12, g, steps=2, branch_mixup=False)
    assert not torch.allclose(xf_q, xf_p) and not torch.allclose(xb_q, xb_p)
    # quirk: the backward branch never sees the global code
    xb_q2, _ = discrete_trajectory(head, emb, xyz, tau, 12, g * 10, steps=2, branch_mixup=True)
    torch.testing.assert_close(xb_q, xb_q2)
    xb_p2, _ = discrete_trajectory(head, emb, xyz, tau, 12, g * 10, steps=2, branch_mixup=False)
    assert not torch.allclose(xb_p, xb_p2)
    # one global block, one step: h_f == h_b at step 0 (method.md §2.8), so the quirk's forward equals the fixed one
    head1 = DynamicHead(d_latent=16, d_global=8, d_flow_latent=32, d_hidden=32, n_global_blocks=1)
    _, xf1_q = discrete_trajectory(head1, emb, xyz, tau, 12, g, steps=1, branch_mixup=True)
    _, xf1_p = discrete_trajectory(head1, emb, xyz, tau, 12, g, steps=1, branch_mixup=False)
    torch.testing.assert_close(xf1_q, xf1_p)


def _reference_discrete_trajectory(head, emb, xyz, tau, n, g, steps, mixup):
    """The original's loop written out literally (method.md §2.8): every branch computes every layer."""
    from mononerf.models.heads import linear_split
    from mononerf.models.trajectory import _embed

    x_f, x_b = xyz, xyz
    for i in range(steps):
        h_f = torch.relu(head.lin_in(torch.nn.functional.normalize(_embed(emb, x_f, tau + i / steps, n), dim=-1)))
        h_b = torch.relu(head.lin_in(torch.nn.functional.normalize(_embed(emb, x_b, tau - i / steps, n), dim=-1)))
        for k in range(head.n_global_blocks):
            if mixup:
                h_f = head.global_blocks[k](linear_split(head.lin_global_z[k], h_b, g))
                h_b = head.global_blocks[k](h_b)
            else:
                h_f = head.global_blocks[k](linear_split(head.lin_global_z[k], h_f, g))
                h_b = head.global_blocks[k](linear_split(head.lin_global_z[k], h_b, g))
        x_f = x_f + torch.tanh(head.sf_linear(h_f)) / steps
        x_b = x_b - torch.tanh(head.sf_linear(h_b)) / steps
    return x_b, x_f


@pytest.mark.parametrize("mixup", [True, False])
@pytest.mark.parametrize("n_global,steps", [(2, 2), (2, 1), (1, 2), (3, 3), (0, 2)])
def test_lean_discrete_trajectory_equals_the_literal_loop(mixup, n_global, steps):
    # the fast path skips layers whose outputs the original discards (and shares the first step's evaluation
    # without the quirk): values and gradients must equal the literal loop (issue #8, float64)
    torch.manual_seed(3)
    head = DynamicHead(d_latent=16, d_global=8, d_flow_latent=32, d_hidden=32, n_global_blocks=n_global).double()
    emb = PositionalEncoding(4, 10)
    xyz, tau = (torch.rand(2, 9, 3, dtype=torch.float64) - 0.5), torch.full((2, 9), 4.3, dtype=torch.float64)
    g = torch.randn(2, 8, dtype=torch.float64, requires_grad=True)
    fast = discrete_trajectory(head, emb, xyz, tau, 12, g, steps=steps, branch_mixup=mixup)
    ref = _reference_discrete_trajectory(head, emb, xyz, tau, 12, g, steps, mixup)
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    w = torch.randn(2, 9, 3, dtype=torch.float64)
    params = [p for p in head.parameters()] + [g]
    gf = torch.autograd.grad((fast[0] * w).sum() + (fast[1] * w.flip(1)).sum(), params, allow_unused=True)
    gr = torch.autograd.grad((ref[0] * w).sum() + (ref[1] * w.flip(1)).sum(), params, allow_unused=True)
    for a, b in zip(gf, gr):
        if a is None or b is None:
            assert (a is None or not a.abs().any()) and (b is None or not b.abs().any())
        else:
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_displacement_bounded_per_step():
    torch.manual_seed(1)
    head, emb = DynamicHead(d_latent=16, d_global=8, d_flow_latent=32, d_hidden=32), PositionalEncoding(4, 10)
    with torch.no_grad():
        head.sf_linear.weight.mul_(100)
    xyz = torch.rand(1, 50, 3)
    xb, xf = discrete_trajectory(head, emb, xyz, torch.full((1, 50), 2.0), 12, torch.randn(1, 8), steps=2)
    assert (xf - xyz).abs().max() <= 1.0 + 1e-6 and (xb - xyz).abs().max() <= 1.0 + 1e-6


# ------------------------------------------------------------------------------------------------ feature lookup
def test_sample_frame_features_align_corners_convention():
    # latent value = column index in channel 0, row index in channel 1, frame index in channel 2
    S, T, h, w = 2, 3, 5, 7
    cols = torch.arange(w, dtype=torch.float32).expand(h, w)
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    latent = torch.stack([torch.stack([cols, rows, torch.full((h, w), float(f))]) for f in range(T)], 1)
    latent = latent[None].expand(S, -1, -1, -1, -1).contiguous()  # (S, 3, T, h, w)
    scaling = torch.tensor([w / (w - 1) * 2, h / (h - 1) * 2])
    W, H = 70, 50
    # uv_n = uv * scaling / (W, H) - 1 = -1 at uv = 0 → column 0; col c at uv = c * (w-1)/w * W/(w-1)... solve directly
    target = torch.tensor([[3.0, 2.0]])  # column 3, row 2
    uv = (target / (torch.tensor([w - 1.0, h - 1.0])) * 2) / scaling * torch.tensor([W, H])  # uv_n + 1 = 2c/(w-1)
    uv = uv[None].expand(S, 1, 2)
    frame = torch.tensor([0, 2])
    out = sample_frame_features(latent, frame, uv, (W, H), scaling)
    assert out.shape == (S, 1, 3)
    torch.testing.assert_close(out[:, 0, :2], torch.tensor([[3.0, 2.0], [3.0, 2.0]]))
    torch.testing.assert_close(out[:, 0, 2], torch.tensor([0.0, 2.0]))
    # outside the image: border padding clamps to the edge
    far = sample_frame_features(latent, frame, torch.full((S, 1, 2), 1e4), (W, H), scaling)
    torch.testing.assert_close(far[:, 0, :2], torch.tensor([[w - 1.0, h - 1.0]] * 2))


def test_temporal_features_edges_and_reshape_quirk():
    S, C, T, h, w, P = 2, 4, 3, 5, 6, 3
    latent = torch.randn(S, C, T, h, w)
    scaling = torch.tensor([w / (w - 1) * 2, h / (h - 1) * 2])
    uv = torch.rand(S, P, 2) * 10
    frame = torch.tensor([0, 2])  # first scene at the start, second at the end
    cur = sample_frame_features(latent, frame, uv, (12, 10), scaling)
    fixed = temporal_features(latent, frame, T, cur, uv, uv, (12, 10), scaling, reshape_quirk=False)
    assert fixed.shape == (S, P, 2, C)
    torch.testing.assert_close(fixed[0, :, 0], cur[0])   # no frame -1: current features stand in
    torch.testing.assert_close(fixed[1, :, 1], cur[1])   # no frame T
    torch.testing.assert_close(fixed[0, :, 1], sample_frame_features(latent, (frame + 1).clamp(max=T - 1), uv, (12, 10), scaling)[0])
    quirk = temporal_features(latent, frame, T, cur, uv, uv, (12, 10), scaling, reshape_quirk=True)
    assert quirk.shape == (S, P, 2, C) and not torch.allclose(quirk, fixed)
    # the quirk is the original's op sequence: stack on a channel-first layout, permute, reshape
    ref = torch.stack([fixed[..., 0, :].transpose(1, 2), fixed[..., 1, :].transpose(1, 2)], -1)
    torch.testing.assert_close(quirk, ref.permute(0, 1, 3, 2).reshape(S, P, 2, C))


def test_temporal_features_read_frame_t_straight_into_the_buffer():
    # renders pass no point-major feat_curr: a scene whose neighbour frame lies outside the video reads frame t at uv
    # straight into the result (and its neighbour lookup is skipped); the same bits as the stand-in copy
    torch.manual_seed(0)
    S, C, T, h, w, P = 3, 5, 3, 5, 6, 7
    latent = torch.randn(S, C, T, h, w)
    scaling = torch.tensor([w / (w - 1) * 2, h / (h - 1) * 2])
    uv, uv_b, uv_f = (torch.rand(S, P, 2) * 12 for _ in range(3))
    frame = torch.tensor([0, 1, 2])  # at the start, inside, at the end
    cur = sample_frame_features(latent, frame, uv, (12, 10), scaling)
    ws = Workspace()
    for quirk in (True, False):
        ref = temporal_features(latent, frame, T, cur, uv_b, uv_f, (12, 10), scaling, reshape_quirk=quirk)
        got = temporal_features(latent, frame, T, None, uv_b, uv_f, (12, 10), scaling, reshape_quirk=quirk, uv=uv)
        assert torch.equal(got, ref)
    ref = temporal_features(latent, frame, T, cur, uv_b, uv_f, (12, 10), scaling)
    for _ in range(2):  # a workspace's buffer, reused: every element is written (stale NaNs must not show)
        buf = ws.empty("temporal", (S, C, 2, P), torch.float32, torch.device("cpu")).fill_(float("nan"))
        got = temporal_features(latent, frame, T, None, uv_b, uv_f, (12, 10), scaling, uv=uv, buf=buf)
        assert torch.equal(got, ref) and got.data_ptr() == buf.data_ptr()
    assert ws.nbytes == S * C * 2 * P * 4
    with pytest.raises(ValueError, match="feat_curr or uv"):
        temporal_features(latent, frame, T, None, uv_b, uv_f, (12, 10), scaling)
    with pytest.raises(ValueError, match="contiguous"):
        temporal_features(latent, frame, T, cur, uv_b, uv_f, (12, 10), scaling, buf=torch.empty(S, C, P, 2))
    with pytest.raises(ValueError, match="reshape quirk"):
        temporal_features(latent, frame, T, cur, uv_b, uv_f, (12, 10), scaling, reshape_quirk=False,
                          buf=torch.empty(S, C, 2, P))


def test_workspace_reuses_its_buffers():
    ws = Workspace()
    a = ws.empty("x", (4, 6), torch.float32, torch.device("cpu"))
    b = ws.empty("x", (3, 5), torch.float32, torch.device("cpu"))  # smaller: the same memory
    assert b.shape == (3, 5) and b.is_contiguous() and b.data_ptr() == a.data_ptr()
    c = ws.empty("y", (2,), torch.float32, torch.device("cpu"))  # another name: its own buffer
    assert c.data_ptr() != a.data_ptr()
    d = ws.empty("x", (5, 6), torch.float32, torch.device("cpu"))  # bigger: grown
    assert d.shape == (5, 6) and ws.nbytes == (30 + 2) * 4
    assert ws.empty("x", (2, 2), torch.float64, torch.device("cpu")).dtype == torch.float64
    ws.clear()
    assert ws.nbytes == 0
    # one set per thread; a finished thread's set goes when a buffer is next made (a viewer's clients come and go)
    import threading

    worker = threading.Thread(target=lambda: ws.empty("x", (100,), torch.float32, torch.device("cpu")))
    worker.start()
    worker.join()
    assert ws.nbytes == 400
    ws.empty("x", (3,), torch.float32, torch.device("cpu"))
    assert ws.nbytes == 12


# ------------------------------------------------------------------------------------------------ full model
def _tiny_model(**kw):
    torch.manual_seed(0)
    enc = SpatialTemporalEncoder(num_layers=[0, 1], pretrained=False, freeze=True)
    enc2 = SpatialEncoder(pretrained=False, freeze=True, num_layers=2)
    dyn = DynamicHead(d_latent=enc.latent_size, d_hidden=32, n_blocks=2, n_global_blocks=2, d_global=16)
    sta = StaticHead(d_latent=enc2.latent_size, d_hidden=32, n_blocks=3)
    kw.setdefault("integrator", EulerSteps(2, kw.get("quirks", Quirks()).discrete_flow_branch_mixup))
    return MonoNeRF(enc, enc2, dyn, sta, **kw)


@pytest.fixture(scope="module")
def tiny_setup():
    S, T, H, W = 2, 4, 32, 48
    g = torch.Generator().manual_seed(0)
    images = torch.rand(S, T, H, W, 3, generator=g)
    c2w = torch.eye(4)[:3].expand(S, T, 3, 4).clone()
    c2w[..., 0, 3] = torch.linspace(0, 0.1, T)
    focal = torch.tensor([40.0, 44.0])
    R = 6
    rays_d = torch.randn(S, R, 3, generator=g) * 0.1 + torch.tensor([0.0, 0.0, -1.0])
    rays = prepare_rays(c2w[:, 1, :, 3][:, None].expand(S, R, 3), rays_d, Pinhole.centred(H, W, focal))
    t = torch.tensor([-1 + 2 / T * 1, -1 + 2 / T * 3])
    return images, c2w, focal, rays, t, T


def _render(model, feats, rays, t, T, **kw):
    return render_rays_dynamic(rays, 0.0, 1.0, t, n_samples=8, num_frames=T,
                               joint_fn=lambda p, v: model.query_joint(p, v, feats),
                               dynamic_fn=lambda p, v: model.query_dynamic(p, v, feats), **kw)


def test_model_shapes_and_gradients(tiny_setup):
    images, c2w, focal, rays, t, T = tiny_setup
    model = _tiny_model()
    feats = model.encode(images, c2w, focal)
    assert feats.latent.shape[:3] == (2, 64 + 256, T) and feats.latent2d.shape[:3] == (2, 128, T)
    assert feats.pooled_flow_latent.shape == (2, 2048) and not feats.latent.requires_grad
    out = _render(model, feats, rays, t, T, perturb=True, raw_noise_std=1.0)
    assert out["rgb_map_full"].shape == (2, 6, 3) and out["sceneflow_f"].shape == (2, 6, 8, 3)
    loss = sum(out[k].abs().mean() for k in ("rgb_map_full", "sceneflow_f", "sceneflow_b", "rgb_map_d_f"))
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing
    assert all(not n.startswith("encoder") for n, _ in trainable)  # frozen encoders: nothing trainable there
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith("encoder"))


def test_channel_moments_and_standardize_plain_and_native_volume():
    from mononerf.models.features import FeatureVolume, channel_moments, standardize_volume

    g = torch.Generator().manual_seed(3)
    fine = torch.rand(2, 3, 4, 8, 6, generator=g) * 3 + 1  # all positive, like post-ReLU encoder features
    coarse = torch.rand(2, 5, 4, 4, 3, generator=g) * 2 - 0.5
    native = FeatureVolume([fine, coarse], (8, 6))
    full = native.materialize()
    mean, std = channel_moments(full)
    # hand-computed for one channel: the population moments over (T, h, w)
    ref = full[1, 4].double()
    assert mean[1, 4] == pytest.approx(float(ref.mean())) and std[1, 4] == pytest.approx(float(ref.std(correction=0)))
    m2, s2 = channel_moments(native)  # accumulated frame by frame over the resized coarse level: the same
    torch.testing.assert_close(m2, mean)
    torch.testing.assert_close(s2, std)
    plain, nat = standardize_volume(full), standardize_volume(native)
    assert isinstance(nat, FeatureVolume) and nat.shape == native.shape
    torch.testing.assert_close(nat.materialize(), plain, atol=1e-5, rtol=0)  # affine maps commute with the resize
    torch.testing.assert_close(plain.mean(dim=(2, 3, 4)), torch.zeros(2, 8), atol=1e-5, rtol=0)
    torch.testing.assert_close(plain.std(dim=(2, 3, 4), correction=0), torch.ones(2, 8), atol=1e-5, rtol=0)
    const = torch.full((1, 2, 2, 3, 3), 7.0)  # a constant channel becomes 0, not NaN
    assert torch.equal(standardize_volume(const), torch.zeros_like(const))


@pytest.mark.parametrize("native", [False, True])
def test_scene_features_save_and_load_their_encoded_state(tiny_setup, tmp_path, native):
    from dataclasses import replace

    from mononerf.models.features import FeatureVolume
    from mononerf.models.mononerf import SceneFeatures

    images, c2w, focal, *_ = tiny_setup
    model = _tiny_model()
    model.encoder.native_latent = model.encoder2d.native_latent = native
    feats = model.encode(images, c2w, focal)
    assert isinstance(feats.latent, FeatureVolume) == native and isinstance(feats.latent2d, FeatureVolume) == native
    for f in (feats, replace(feats, latent2d=None, latent2d_scaling=None)):  # no ResNet18 features
        torch.save(f.encoded_state(), tmp_path / "f.pt")
        state = torch.load(tmp_path / "f.pt", weights_only=True)
        back = SceneFeatures.from_encoded_state(state, c2w, focal, f.image_size)
        for key in SceneFeatures.ENCODED:
            a, b = getattr(back, key), getattr(f, key)
            assert type(a) is type(b), key
            if isinstance(b, FeatureVolume):
                assert a.grid == b.grid and len(a.levels) == len(b.levels)
                assert all(torch.equal(x, y) for x, y in zip(a.levels, b.levels))
            elif b is not None:
                assert torch.equal(a, b), key
        assert torch.equal(back.w2c, f.w2c) and torch.equal(back.camera.fx, f.camera.fx) and back.image_size == f.image_size
    assert "latent2d" not in state and "latent2d_levels" not in state and back.latent2d is None
    projected = replace(feats, dynamic_proj=object(), static_proj=object()).detach()  # cameras kept, folds dropped
    assert projected.dynamic_proj is None and projected.static_proj is None and projected.w2c is feats.w2c


def test_standardize_features_flags(tiny_setup):
    images, c2w, focal, rays, t, T = tiny_setup
    raw = _tiny_model().encode(images, c2w, focal)
    std = _tiny_model(standardize_latent=True).encode(images, c2w, focal)
    assert raw.latent.mean() > 0.1 and abs(float(std.latent.mean(dim=(2, 3, 4)).abs().max())) < 1e-4
    torch.testing.assert_close(std.latent2d, raw.latent2d)  # the image features only with their own flag
    both = _tiny_model(standardize_latent=True, standardize_latent2d=True).encode(images, c2w, focal)
    assert float(both.latent2d.mean(dim=(2, 3, 4)).abs().max()) < 1e-4
    torch.testing.assert_close(both.pooled_flow_latent, raw.pooled_flow_latent)  # the global code's input is kept


def test_static_pass_and_random_static_frame_quirk(tiny_setup):
    images, c2w, focal, rays, t, T = tiny_setup
    model = _tiny_model()
    feats = model.encode(images, c2w, focal)
    pts = torch.rand(2, 6, 8, 4) * 0.5
    pts[..., 3] = -1 + 2 / T  # frame 1
    rays_v = rays.viewdirs
    fixed = _tiny_model(quirks=Quirks(random_static_frame=False))
    fixed.load_state_dict(model.state_dict())
    a, b = fixed.query_static(pts, rays_v, feats), fixed.query_static(pts, rays_v, feats)
    torch.testing.assert_close(a, b)  # deterministic: frame of the point's own time
    outs = {tuple(model.query_static(pts, rays_v, feats, torch.Generator().manual_seed(s))[0, 0, 0].tolist())
            for s in range(8)}
    assert len(outs) > 1  # random frame per call
    out = render_rays_static(rays, 0.0, 1.0, t, n_samples=8, static_fn=lambda p, v: model.query_static(p, v, feats))
    assert out["rgb_map_s"].shape == (2, 6, 3)


@pytest.mark.parametrize("quirk", ["temporal_feature_ndc_as_world", "latent_temporal_reshape",
                                   "discrete_flow_branch_mixup", "encoder_batchnorm_train", "encoder_clip_stretch"])
def test_each_model_quirk_changes_the_output(tiny_setup, quirk):
    images, c2w, focal, rays, t, T = tiny_setup
    on, off = _tiny_model(), _tiny_model(quirks=Quirks().but(**{quirk: False}))
    off.load_state_dict(on.state_dict())
    out_on = _render(on, on.encode(images, c2w, focal), rays, t, T)
    out_off = _render(off, off.encode(images, c2w, focal), rays, t, T)
    assert not torch.allclose(out_on["rgb_map_full"], out_off["rgb_map_full"])


def test_ode_mode_runs_and_differs(tiny_setup):
    images, c2w, focal, rays, t, T = tiny_setup
    disc, ode = _tiny_model(), _tiny_model(integrator=NeuralODE())
    assert (type(disc.integrator), type(ode.integrator)) == (EulerSteps, NeuralODE)
    ode.load_state_dict(disc.state_dict())
    feats = disc.encode(images, c2w, focal)
    out = _render(ode, feats, rays, t, T)
    assert torch.isfinite(out["raw_pts_f"]).all()
    assert not torch.allclose(out["raw_pts_f"], _render(disc, feats, rays, t, T)["raw_pts_f"])
    with pytest.raises(ValueError, match="flow_mode must be one of"):
        integrator_from_conf(types.SimpleNamespace(flow_mode="rk4"), Quirks())


def test_the_flow_mode_choices_are_the_registered_integrators():
    # the config layer may not import the models: its list of choices and the registry must not drift apart
    from mononerf.config.schema import KEYS

    assert KEYS["model.mlp_dynamic.flow_mode"].choices == tuple(INTEGRATORS)


def test_displacements_in_ndc_units_are_bounded(tiny_setup):
    images, c2w, focal, rays, t, T = tiny_setup
    model = _tiny_model()
    out = _render(model, model.encode(images, c2w, focal), rays, t, T)
    assert out["sceneflow_f"].abs().max() <= 1.0 + 1e-6
    assert math.isfinite(float(out["rgb_map_full"].detach().sum()))


# ------------------------------------------------------------------------------------------------ from_conf
EXP = "mononerf_conf/exp/Balloon1_Balloon2/dynamic_temporal_feat_static_mask_flow_loss_multiscenes_discrete2_addition.conf"


def test_from_conf_builds_the_released_architecture():
    from mononerf.config import parse_config_file

    cfg = parse_config_file(EXP, ["model.encoder.pretrained=false", "model.encoder_2d.pretrained=false"])
    m = MonoNeRF.from_conf(cfg)
    d = m.mlp_dynamic
    # method.md §2.9 with the EXP conf: 84-d input, 832-d latent, 3 blocks, 2 global blocks, 256 hidden, global code 256
    assert d.lin_in.in_features == 84 and d.lin_in.out_features == 256
    assert len(d.blocks) == 3 and len(d.global_blocks) == 2 and len(d.lin_z) == 3
    assert d.lin_z[0].in_features == 832 and d.lin_global_z[0].in_features == 512
    assert d.ode_fc[0].in_features == 2048 and d.ode_fc[2].out_features == 256
    assert d.lin_out.out_features == 4 and d.sf_linear.out_features == 3
    # method.md §2.10: 63-d input, 5 blocks, 3 lin_z of 512, view branch 27+256 → 128
    s = m.mlp_static
    assert s.lin_in.in_features == 63 and len(s.blocks) == 5 and len(s.lin_z) == 3 and s.lin_z[0].in_features == 512
    assert s.view_head.views_linears[0].in_features == 27 + 256 and s.view_head.views_linears[0].out_features == 128
    assert m.integrator == EulerSteps(2, branch_mixup=True) and m.freeze_enc
    assert all(not p.requires_grad for p in m.encoder.parameters())
    assert m.quirks == Quirks()  # every quirk as the original
    off = MonoNeRF.from_conf(cfg.with_overrides(["quirks.latent_temporal_reshape=false"]))
    assert off.quirks == Quirks(latent_temporal_reshape=False)
    # each integrator reads its own settings from model.mlp_dynamic; the Euler steps get their quirk
    fixed = MonoNeRF.from_conf(cfg.with_overrides(["quirks.discrete_flow_branch_mixup=false"]))
    assert fixed.integrator == EulerSteps(2, branch_mixup=False)
    ode = MonoNeRF.from_conf(cfg.with_overrides([
        "model.mlp_dynamic.flow_mode=ode", "model.mlp_dynamic.ode_solver=rk4", "model.mlp_dynamic.rtol=0.5",
        "model.mlp_dynamic.atol=0.25", "model.mlp_dynamic.ode_step_size=0.125", "model.mlp_dynamic.use_adjoint=true"]))
    assert ode.integrator == NeuralODE("rk4", 0.5, 0.25, 0.125, True)


def test_from_conf_missing_checkpoint_names_the_file(tmp_path, monkeypatch):
    from mononerf.config import parse_config_file
    from mononerf.errors import MissingWeightsError

    monkeypatch.chdir(tmp_path)
    cfg = parse_config_file(str(__import__("pathlib").Path(__file__).parents[1] / EXP),
                            ["model.encoder.pretrained_path=nowhere/slowonly_missing.pth"])
    with pytest.raises(MissingWeightsError, match="slowonly_missing.pth"):
        MonoNeRF.from_conf(cfg)


def test_frozen_features_pass_no_gradient_to_the_trajectory(tiny_setup):
    """With frozen encoders the original detaches the gathered features (method.md §2.7 steps 6–7): no gradient may
    reach the velocity field through the sampling positions, also when the points themselves were flowed."""
    images, c2w, focal, rays, t, T = tiny_setup
    model = _tiny_model()
    feats = model.encode(images, c2w, focal)
    pts = torch.rand(2, 6, 8, 4) * 0.5
    pts[..., 3] = -1 + 2 / T
    _, flowed = discrete_trajectory(model.mlp_dynamic, model.embed_pts, pts[..., :3].reshape(2, -1, 3),
                                    torch.full((2, 48), 1.0), T, torch.zeros(2, 16), steps=2)
    pts = torch.cat([flowed.reshape(2, 6, 8, 3), pts[..., 3:]], -1)  # positions that depend on the parameters
    seen = {}

    def record(module, args):
        seen["latent"], seen["temporal"], seen["sf"] = args[2], args[5], args[4]

    handle = model.mlp_dynamic.register_forward_pre_hook(record)
    try:
        model.query_dynamic(pts, rays.viewdirs, feats)
    finally:
        handle.remove()
    assert not seen["latent"].requires_grad and not seen["temporal"].requires_grad
    assert seen["sf"].requires_grad  # the trajectory itself stays differentiable


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_cuda_give_the_same_outputs(tiny_setup):
    images, c2w, focal, rays, t, T = tiny_setup
    model = _tiny_model(quirks=Quirks(random_static_frame=False))
    feats = model.encode(images, c2w, focal)
    out_cpu = _render(model, feats, rays, t, T)
    gpu = _tiny_model(quirks=Quirks(random_static_frame=False)).cuda()
    gpu.load_state_dict(model.state_dict())
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    feats_gpu = gpu.encode(images.cuda(), c2w.cuda(), focal.cuda())
    rays_gpu = type(rays)(*(x.cuda() for x in rays))
    out_gpu = _render(gpu, feats_gpu, rays_gpu, t.cuda(), T)
    for key in ("rgb_map_full", "depth_map_full", "sceneflow_f", "rgb_map_d_b"):
        torch.testing.assert_close(out_gpu[key].cpu(), out_cpu[key], rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_render_waits_for_the_device_once_per_field_query(tiny_setup):
    # every read of a device value on the host (and every copy of a host tensor to the device) waits until the GPU
    # has run all queued work; the render and its backward may do so only where the host needs the frame indices
    import warnings

    images, c2w, focal, rays, t, T = tiny_setup
    model = _tiny_model(quirks=Quirks(random_static_frame=False)).cuda()
    feats = model.encode(images.cuda(), c2w.cuda(), focal.cuda())
    rays_gpu, t_gpu = type(rays)(*(x.cuda() for x in rays)), t.cuda()

    def step():
        out = _render(model, feats, rays_gpu, t_gpu, T)
        sum(out[k].abs().mean() for k in ("rgb_map_full", "sceneflow_f", "rgb_map_d_b")).backward()

    step()  # warm-up (library handles, allocator)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    waits = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught if "synchroniz" in str(w.message)]
    # the joint query and the t-1 / t+1 queries read their frame indices once each; the finite check reads once
    assert len(waits) <= 4, "\n".join(waits)


# ---------------------------------------------------------------------------------------- batchify (method.md §2.6)
@pytest.fixture(scope="module")
def f64_case(tiny_setup):
    """The tiny model in float64 with its features (encoded once, in float32: float64 convolutions are slow)."""
    images, c2w, focal, rays, t, T = tiny_setup
    model = _tiny_model()
    feats = model.encode(images, c2w, focal)
    d = {k: (v.double() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in vars(feats).items()}
    return model.double(), type(feats)(**d), rays, t, T


def _batchified_render(model, feats, rays, t, T, per_call, checkpoint=False):
    from mononerf.render.images import batchify_field

    joint = batchify_field(lambda p, v: model.query_joint(p, v, feats), per_call, checkpoint=checkpoint)
    dyn = batchify_field(lambda p, v: model.query_dynamic(p, v, feats), per_call, checkpoint=checkpoint)
    rays = type(rays)(*(x.double() for x in rays))
    g = torch.Generator().manual_seed(5)
    return render_rays_dynamic(rays, 0.0, 1.0, t.double(), n_samples=8, num_frames=T, joint_fn=joint,
                               dynamic_fn=dyn, perturb=True, raw_noise_std=1.0, generator=g)


def _loss_and_grads(model, out):
    loss = sum((out[k] * torch.linspace(0.5, 1.5, out[k].numel(), dtype=out[k].dtype).reshape(out[k].shape)).sum()
               for k in ("rgb_map_full", "sceneflow_f", "sceneflow_b", "rgb_map_d_f", "rgb_map_d_b", "depth_map_full"))
    params = [p for p in model.parameters() if p.requires_grad]
    return loss.detach(), torch.autograd.grad(loss, params)


@pytest.mark.parametrize("per_call", [16, 7])
def test_batchify_is_exact_for_per_point_fields(f64_case, per_call):
    # without the scrambling quirk every point is independent: slicing the network calls changes nothing
    model, feats, rays, t, T = f64_case
    model.quirks = Quirks(latent_temporal_reshape=False)
    whole = _batchified_render(model, feats, rays, t, T, per_call=10**6)  # 6 rays x 8 samples = 48 points: one call
    sliced = _batchified_render(model, feats, rays, t, T, per_call=per_call)
    for k in ("rgb_map_full", "depth_map_full", "sceneflow_f", "rgb_map_d_b"):
        torch.testing.assert_close(sliced[k], whole[k], atol=1e-12, rtol=0)
    lw, gw = _loss_and_grads(model, whole)
    ls, gs = _loss_and_grads(model, sliced)
    torch.testing.assert_close(ls, lw, atol=1e-10, rtol=0)
    for a, b in zip(gs, gw):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    model.quirks = Quirks()


def test_batchify_groups_points_like_the_originals_netchunk(f64_case):
    # with the scrambling quirk (method.md §8.3) the output depends on which points share a call: the slices must be
    # consecutive ray-major points, as the original's batchify cuts them
    model, feats, rays, t, T = f64_case
    pts = torch.rand(2, 6, 8, 4, dtype=torch.float64) * 0.5
    pts[..., 3] = t.double()[:, None, None]
    dirs = rays.viewdirs.double()
    from mononerf.render.images import batchify_field

    _, raw_d = batchify_field(lambda p, v: model.query_joint(p, v, feats), 16)(pts, dirs)
    whole = model.query_joint(pts, dirs, feats)[1]
    assert not torch.allclose(raw_d, whole)  # the quirk makes the grouping visible
    # the third call holds points 32..47 = rays 4 and 5, each with its own view direction
    first = model.query_joint(pts.reshape(2, 48, 1, 4)[:, 32:48], dirs[:, 4:6, None].expand(2, 2, 8, 3)
                              .reshape(2, 16, 3), feats)[1]
    torch.testing.assert_close(raw_d.reshape(2, 48, -1)[:, 32:48], first.reshape(2, 16, -1), atol=1e-12, rtol=0)


def test_activation_checkpointing_gives_the_same_values_and_gradients(f64_case):
    model, feats, rays, t, T = f64_case
    plain = _batchified_render(model, feats, rays, t, T, per_call=16)
    ckpt = _batchified_render(model, feats, rays, t, T, per_call=16, checkpoint=True)
    lp, gp = _loss_and_grads(model, plain)
    lc, gc = _loss_and_grads(model, ckpt)
    torch.testing.assert_close(lc, lp, atol=1e-12, rtol=0)
    for a, b in zip(gc, gp):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_dynamic_head_equals_the_literal_concatenated_forward():
    # two reorderings in DynamicHead (issue #8): the global code's projection is broadcast instead of repeating the
    # code per point inside a concatenation, and the mean over the t±1 features is taken before temporal_linear
    # instead of after it. Values and gradients must equal the literal forward of method.md §2.9 (float64).
    torch.manual_seed(7)
    head = DynamicHead(d_latent=24, d_global=8, d_flow_latent=16, d_hidden=32).double()
    S, P = 2, 11
    pts, views = torch.randn(S, P, 84, dtype=torch.float64), torch.randn(S, P, 27, dtype=torch.float64)
    z, g = torch.randn(S, P, 24, dtype=torch.float64), torch.randn(S, 8, dtype=torch.float64)
    sf, zt = torch.randn(S, P, 6, dtype=torch.float64), torch.randn(S, P, 2, 24, dtype=torch.float64)

    def literal():
        h = torch.relu(head.lin_in(torch.nn.functional.normalize(pts, dim=-1)))
        g_rep = g[:, None, :].expand(S, P, 8)
        for k in range(2):
            h = head.global_blocks[k](head.lin_global_z[k](torch.cat([h, g_rep], -1)))
        for b in range(3):
            tz = head.lin_z[b](z)
            if b == 0:
                tz = head.temporal_linear_fuse[0](torch.cat([tz, head.temporal_linear[0](zt).mean(dim=2)], -1))
            h = head.blocks[b](h + tz)
        return torch.cat([head.lin_out(h), sf, torch.sigmoid(head.weight_linear(h))], -1)

    fast, ref = head(pts, views, z, g, sf, zt), literal()
    torch.testing.assert_close(fast, ref, atol=1e-12, rtol=0)
    w = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad((fast * w).sum(), list(head.parameters()), allow_unused=True),
                    torch.autograd.grad((ref * w).sum(), list(head.parameters()), allow_unused=True)):
        if a is None or b is None:
            assert a is None and b is None
        else:
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_feature_lookup_gradcheck_plain_and_native_volume():
    # with info.freeze_enc = false the encoders train through the lookups: gradients must reach both layouts
    from mononerf.models.features import FeatureVolume

    torch.manual_seed(0)
    fine = torch.randn(2, 4, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    coarse = torch.randn(2, 3, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    uv = torch.rand(2, 7, 2, dtype=torch.float64) * 10
    frame, scaling = torch.tensor([0, 2]), torch.tensor([6 / 5 * 2, 5 / 4 * 2], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a, b: sample_frame_features(FeatureVolume([a, b], (5, 6)), frame, uv, (12, 10), scaling), (fine, coarse))
    assert torch.autograd.gradcheck(lambda a: sample_frame_features(a, frame, uv, (12, 10), scaling), (fine,))


# ------------------------------------------------------------------------------------------------ projected volumes
def test_projected_volume_lookup_equals_the_projected_lookup():
    # W·(bilinear lookup) = bilinear lookup of (W·maps), on the grid and through a coarse level's resize (issue #8)
    from mononerf.models.features import FeatureVolume
    from mononerf.models.projected import ProjectedVolume

    torch.manual_seed(0)
    fine = torch.randn(2, 4, 3, 5, 6, dtype=torch.float64)
    coarse = torch.randn(2, 3, 3, 3, 4, dtype=torch.float64)
    w = torch.randn(10, 7, dtype=torch.float64)
    uv = torch.rand(2, 9, 2, dtype=torch.float64) * 14 - 1  # some points outside the image (border padding)
    scaling = torch.tensor([6 / 5 * 2, 5 / 4 * 2], dtype=torch.float64)
    for volume in (FeatureVolume([fine, coarse], (5, 6)), FeatureVolume([fine, coarse], (5, 6)).materialize()):
        proj = ProjectedVolume(volume, w)
        assert proj.shape == (2, 10, 3, 5, 6)
        for frame in ([0, 2], [1, 1], [2, 0], [0, 1], [1, 2]):  # more frames than the cache keeps
            frame = torch.tensor(frame)
            ref = sample_frame_features(volume, frame, uv, (12, 10), scaling) @ w.T
            torch.testing.assert_close(sample_frame_features(proj, frame, uv, (12, 10), scaling), ref,
                                       atol=1e-12, rtol=0)
        assert len(proj._maps) <= proj.capacity
    with pytest.raises(ValueError, match="channels"):
        ProjectedVolume(fine, torch.randn(3, 5, dtype=torch.float64))


def _f64_native(f64_case):
    """The float64 case with its SlowOnly features as a FeatureVolume with a coarse level."""
    from mononerf.models.features import FeatureVolume

    model, feats, rays, t, T = f64_case
    lat = feats.latent
    s, c, n, h, w = lat.shape
    coarse = lat[:, c // 2:, :, ::2, ::2].contiguous()  # any values: the test compares two readings of one volume
    return FeatureVolume([lat[:, :c // 2].contiguous(), coarse], (h, w))


@pytest.mark.parametrize("reshape_quirk", [True, False])
@pytest.mark.parametrize("frames", [(1, 2), (0, 3)])  # inner frames; the first and last (raw stand-in features)
@pytest.mark.parametrize("native", [False, True])
def test_folded_projections_render_the_same_as_per_point_layers(f64_case, reshape_quirk, frames, native):
    # the heads' first latent layers applied to the frame maps instead of the sampled points: every output of a
    # render (joint pass and t±1 passes) must equal the plain computation (float64, issue #8)
    import dataclasses

    model, feats, rays, _, T = f64_case
    if native:
        feats = dataclasses.replace(feats, latent=_f64_native(f64_case))
    rays = type(rays)(*(x.double() for x in rays))
    t = torch.tensor([(f + 0.25) * 2 / T - 1 for f in frames], dtype=torch.float64)
    saved = model.quirks
    model.quirks = saved.but(latent_temporal_reshape=reshape_quirk)
    try:
        with torch.inference_mode():
            fast = fold_latent_projections(model, feats, 10 ** 9, Workspace())
            assert fast.dynamic_proj is not None and fast.static_proj is not None
            out_fast = _render(model, fast, rays, t, T, perturb=False, raw_noise_std=0.0)
            again = _render(model, fast, rays, t, T, perturb=False, raw_noise_std=0.0)  # the workspace reused
            out_plain = _render(model, feats, rays, t, T, perturb=False, raw_noise_std=0.0)
    finally:
        model.quirks = saved
    assert fast.dynamic_proj.workspace.nbytes > 0
    assert out_fast.keys() == out_plain.keys()
    for key in out_plain:
        torch.testing.assert_close(out_fast[key], out_plain[key], atol=1e-10, rtol=0, msg=key)
        assert torch.equal(again[key], out_fast[key]), key


def test_folded_projections_when_to_project(tiny_setup):
    images, c2w, focal, rays, t, T = tiny_setup
    model = _tiny_model()
    feats = model.encode(images, c2w, focal)
    with pytest.raises(RuntimeError, match="inference_mode"):
        fold_latent_projections(model, feats, 10 ** 9)
    pixels = min(v.shape[-2] * v.shape[-1] for v in (feats.latent, feats.latent2d))
    with torch.inference_mode():
        assert fold_latent_projections(model, feats, 2 * pixels) is feats  # small renders: per point is cheaper
        big = fold_latent_projections(model, feats, 10 ** 9)
        assert big.dynamic_proj.shape[1] == 2 * 32 and big.static_proj.shape[1] == 3 * 32  # n lin_z x d_hidden
        out = _render(model, big, rays, t, T, perturb=False, raw_noise_std=0.0)
        ref = _render(model, feats, rays, t, T, perturb=False, raw_noise_std=0.0)
    torch.testing.assert_close(out["rgb_map_full"], ref["rgb_map_full"], atol=1e-5, rtol=1e-5)  # float32


@pytest.mark.parametrize("kwargs", [dict(use_spade=True), dict(feature_fuse_mode="concat"),
                                    dict(zero_features=True), dict(flow_guided_feat=False)])
def test_heads_without_a_projection_keep_per_point_layers(kwargs):
    from mononerf.models.projected import latent_projection

    assert latent_projection(DynamicHead(d_latent=24, d_hidden=16, d_global=8, **kwargs)) is None
    assert latent_projection(DynamicHead(d_latent=24, d_hidden=16, d_global=8)).shape == (3 * 16, 24)
    sta = {k: v for k, v in kwargs.items() if k in ("use_spade", "zero_features")}
    if sta:
        assert latent_projection(StaticHead(d_latent=24, d_hidden=16, **sta)) is None


@pytest.mark.parametrize("head_kind", ["static", "dynamic"])
def test_projected_latent_terms_come_in_the_hidden_layout(head_kind):
    # a render's lookups of the projected maps are channel-major (S, C, P) seen as (S, P, C); the latent term added to
    # the hidden state must come back in that state's point-major layout (a channel-major one made every later
    # product copy its input and every residual sum stride: benchmarks/README.md), same values
    torch.manual_seed(0)
    head = StaticHead(d_latent=24, d_hidden=16) if head_kind == "static" else DynamicHead(d_latent=24, d_hidden=16,
                                                                                         d_global=8)
    S, P = 2, 7
    proj = torch.randn(S, 3 * 16, P).transpose(1, 2)  # channel-major lookups, as the render's buffer
    h = torch.randn(S, P, 16)
    lt = torch.randn(S, P, 2, 24)
    with torch.inference_mode():
        for b in range(len(head.lin_z)):
            part = proj[..., b * 16:(b + 1) * 16]
            out = head.add_projected(part, b, h, lt)
            assert out.stride() == h.stride(), (b, out.stride())
            if head_kind == "static" or b > 0:
                assert torch.equal(out, (part + head.lin_z[b].bias) + h)


def test_pair_mean_is_torch_mean_bit_for_bit():
    from mononerf.models.heads import pair_mean

    torch.manual_seed(0)
    x = torch.randn(3, 50, 2, 33) * torch.logspace(-30, 30, 33)  # sums that round, at every magnitude
    x[0, 0, :, 0] = torch.tensor([-0.0, 0.0])
    for v in (x, x.transpose(0, 1)):  # a strided input as well
        ref = v.mean(dim=-2)
        got = pair_mean(v)
        assert torch.equal(got, ref) and got.shape == ref.shape


def test_resnet_block_inference_path_is_the_same_arithmetic():
    from mononerf.models.blocks import ResnetBlockFC

    torch.manual_seed(0)
    block, x = ResnetBlockFC(16), torch.randn(5, 16)
    ref = block(x)
    with torch.no_grad():
        fast = block(x)
    with torch.inference_mode():
        fast2 = block(x)
    assert torch.equal(fast, ref.detach()) and torch.equal(fast2, ref.detach())


@pytest.mark.parametrize("projected", [False, True])
def test_renders_over_blocks_of_points_equal_the_whole_call(tiny_setup, monkeypatch, projected):
    # renders run the heads and the discrete trajectory over cache-sized blocks of points (models/rows.py); the
    # temporal features' reshape quirk still mixes the points of the whole call, outside the blocks
    import mononerf.models.rows as rows
    from mononerf.models.projected import fold_latent_projections

    images, c2w, focal, rays, t, T = tiny_setup
    model = _tiny_model()
    feats = model.encode(images, c2w, focal)
    calls = []
    model.mlp_dynamic.register_forward_hook(lambda *a: calls.append(1))
    outs = {}
    for block in (10 ** 9, 7):
        monkeypatch.setattr(rows, "BLOCK_POINTS", block)
        calls.clear()
        with torch.inference_mode():
            f = fold_latent_projections(model, feats, 10 ** 9) if projected else feats
            outs[block] = _render(model, f, rays, t, T, inference=True, neighbour_passes=False)
        n_calls = len(calls)
        assert n_calls == (1 if block > 100 else -(-rays.origins.shape[1] * 8 // max(1, block // 2))), n_calls
    assert (f.dynamic_proj is not None) == projected
    for k, v in outs[10 ** 9].items():
        torch.testing.assert_close(outs[7][k], v, rtol=1e-6, atol=1e-6, msg=k)
