"""Tests of mononerf.render: rays/NDC, sampling, compositing, induced flow, callback renderer (method.md §1.3, §3)."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from mononerf.errors import MonoNeRFError
from mononerf.geometry.cameras import Pinhole
from mononerf.geometry.flow import induce_flow
from mononerf.geometry.rays import (
    camera_to_pixels,
    get_rays,
    invert_pose,
    ndc_rays,
    ndc_to_world,
    project_to_pixels,
    transform_points,
    world_to_camera,
    world_to_ndc,
)
from mononerf.render.composite import (
    composite_blended,
    composite_single,
    exclusive_transmittance,
    sample_distances,
)
from mononerf.render.images import prepare_rays, render_chunked
from mononerf.render.outputs import (
    BLENDED_OUTPUT_KEYS,
    DYNAMIC_OUTPUT_KEYS,
    INFERENCE_SKIPPED_KEYS,
    PER_RAY_KEYS,
    STATIC_OUTPUT_KEYS,
)
from mononerf.render.renderer import (
    RayBundle,
    check_finite_outputs,
    render_rays_dynamic,
    render_rays_static,
)
from mononerf.render.sampling import sample_along_rays

D64 = torch.float64


def _rotation(seed: int, dtype=D64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=dtype))
    return q * torch.sign(torch.diagonal(r))  # proper orthonormal basis (det may be ±1; fine for rays)


def _pose(seed: int, dtype=D64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 100)
    return torch.cat([_rotation(seed, dtype), 0.3 * torch.randn(3, 1, generator=g, dtype=dtype)], 1)


# ----------------------------------------------------------------------------------------------------------------- rays
def test_get_rays_hand_computed_pixels():
    H, W, f = 4, 6, 2.0
    c2w = _pose(0)
    rays_o, rays_d = get_rays(H, W, f, c2w)
    assert rays_o.shape == rays_d.shape == (H, W, 3)
    R, t = c2w[:, :3], c2w[:, 3]
    # pixel (x=0, y=0): d_cam = ((0-3)/2, -(0-2)/2, -1) = (-1.5, 1, -1)
    assert torch.allclose(rays_d[0, 0], R @ torch.tensor([-1.5, 1.0, -1.0], dtype=D64))
    # pixel (x=5, y=1): d_cam = ((5-3)/2, -(1-2)/2, -1) = (1, 0.5, -1)
    assert torch.allclose(rays_d[1, 5], R @ torch.tensor([1.0, 0.5, -1.0], dtype=D64))
    # centre pixel (x=W/2=3, y=H/2=2) looks along the camera's -z axis
    assert torch.allclose(rays_d[2, 3], -R[:, 2])
    assert torch.equal(rays_o, t.expand(H, W, 3))


def test_get_rays_pixel_offset_and_batched():
    H, W = 4, 6
    c2w = torch.stack([_pose(1), _pose(2)])
    focal = torch.tensor([[2.0], [3.0]], dtype=D64)
    _, d_fixed = get_rays(H, W, 2.0, c2w[0], pixel_offset=0.5)
    # pixel (0, 0) with the half-pixel offset: ((0.5-3)/2, -(0.5-2)/2, -1) = (-1.25, 0.75, -1)
    assert torch.allclose(d_fixed[0, 0], c2w[0, :, :3] @ torch.tensor([-1.25, 0.75, -1.0], dtype=D64))
    rays_o, rays_d = get_rays(H, W, focal, c2w)
    assert rays_d.shape == rays_o.shape == (2, H, W, 3)
    for s in range(2):
        o_s, d_s = get_rays(H, W, float(focal[s, 0]), c2w[s])
        assert torch.allclose(rays_d[s], d_s) and torch.allclose(rays_o[s], o_s)
    with pytest.raises(ValueError):
        get_rays(H, W, 2.0, torch.eye(4, dtype=D64))
    with pytest.raises(ValueError):
        get_rays(H, W, torch.ones(3, dtype=D64), c2w)  # 3 focals for 2 scenes


def test_ndc_rays_near_plane_and_infinity():
    H, W, f = 8, 10, 5.0
    rays_o, rays_d = get_rays(H, W, f, torch.eye(3, 4, dtype=D64))  # identity pose: camera at origin
    o_ndc, d_ndc = ndc_rays(H, W, f, 1.0, rays_o, rays_d)
    # origins moved to the near plane z = -1 -> NDC z = 1 + 2*1/(-1) = -1
    assert torch.allclose(o_ndc[..., 2], torch.full((H, W), -1.0, dtype=D64))
    # a point at infinity along the ray is o' + 1*d' -> NDC z = -1 + 2 = +1
    assert torch.allclose((o_ndc + d_ndc)[..., 2], torch.ones(H, W, dtype=D64))
    # NDC x, y of the near-plane point are its pixel position mapped to [-1, 1]: x_ndc = (x - W/2) / (W/2)
    i = torch.arange(W, dtype=D64)
    assert torch.allclose(o_ndc[0, :, 0], (i - W / 2) / (W / 2))


def test_ndc_rays_agree_with_world_to_ndc_and_per_scene_broadcast():
    g = torch.Generator().manual_seed(0)
    S, R = 2, 5
    H = torch.tensor([[8], [6]])
    W = torch.tensor([[10], [12]])
    f = torch.tensor([[5.0], [7.0]], dtype=D64)
    rays_o = 0.1 * torch.randn(S, R, 3, generator=g, dtype=D64)
    rays_d = torch.randn(S, R, 3, generator=g, dtype=D64)
    rays_d[..., 2] = -1.0 - rays_d[..., 2].abs()
    o_ndc, d_ndc = ndc_rays(H, W, f, 1.0, rays_o, rays_d)
    for s in range(S):
        o_s, d_s = ndc_rays(int(H[s]), int(W[s]), float(f[s]), 1.0, rays_o[s], rays_d[s])
        assert torch.allclose(o_ndc[s], o_s) and torch.allclose(d_ndc[s], d_s)
    # every world point o + s*d maps onto the NDC ray o' + t'*d'
    for step in (2.0, 7.0):
        p_ndc = world_to_ndc(rays_o + step * rays_d, H, W, f)
        t_prime = (p_ndc[..., 2] - o_ndc[..., 2]) / d_ndc[..., 2]
        assert torch.allclose(o_ndc + t_prime[..., None] * d_ndc, p_ndc)


def test_ndc_world_round_trip_and_clamp():
    g = torch.Generator().manual_seed(1)
    S = 2
    H, W, f = torch.tensor([270.0, 100.0], dtype=D64), torch.tensor([480.0, 90.0], dtype=D64), torch.tensor(
        [418.96, 80.0], dtype=D64
    )
    pts = torch.randn(S, 4, 6, 3, generator=g, dtype=D64)
    pts[..., 2] = -1.0 - 999.0 * torch.rand(S, 4, 6, generator=g, dtype=D64)  # z in [-1000, -1]
    assert torch.allclose(ndc_to_world(world_to_ndc(pts, H, W, f), H, W, f), pts, rtol=1e-10, atol=1e-9)
    pts_ndc = torch.rand(S, 5, 3, generator=g, dtype=D64) * 1.9 - 0.95
    assert torch.allclose(world_to_ndc(ndc_to_world(pts_ndc, H, W, f), H, W, f), pts_ndc, atol=1e-12)
    # NDC z = 1 (infinity) is clamped to 1 - 1e-3: z_world = 2 / (0.999 - 1) = -2000
    inf_pt = torch.tensor([[0.0, 0.0, 1.0]], dtype=D64)
    assert torch.allclose(ndc_to_world(inf_pt, 270, 480, 418.96)[0, 2], torch.tensor(-2000.0, dtype=D64))
    # NDC x = 1 on the near plane is the right image border: x = W/(2f)
    edge = ndc_to_world(torch.tensor([[1.0, 0.0, -1.0]], dtype=D64), 270, 480, 418.96)
    assert torch.allclose(edge, torch.tensor([[240 / 418.96, 0.0, -1.0]], dtype=D64))


def test_projection_helpers():
    c2w = torch.stack([_pose(3), _pose(4)])
    w2c = invert_pose(c2w)
    g = torch.Generator().manual_seed(2)
    pts = torch.randn(2, 7, 3, generator=g, dtype=D64)
    # invert_pose is the rigid inverse and world_to_camera agrees with transform_points(w2c, .)
    assert torch.allclose(transform_points(c2w, transform_points(w2c, pts)), pts)
    assert torch.allclose(world_to_camera(pts, c2w), transform_points(w2c, pts))
    # a point on the optical axis in front of the camera projects to the principal point
    on_axis = c2w[:, :, 3] - 3.0 * c2w[:, :, 2]  # camera centre + 3 * (-z axis)
    principal = torch.tensor([[4.0, 3.0], [2.0, 1.0]], dtype=D64)
    pix = project_to_pixels(on_axis[:, None], w2c, torch.tensor([5.0, 6.0], dtype=D64), principal)
    assert torch.allclose(pix[:, 0], principal)
    # hand value: camera point (1, 2, -4), f = 10, c = (5, 6): u = 1/4*10 + 5 = 7.5, v = -2/4*10 + 6 = 1
    pix = camera_to_pixels(torch.tensor([1.0, 2.0, -4.0], dtype=D64), 10.0, (5.0, 6.0))
    assert torch.allclose(pix, torch.tensor([7.5, 1.0], dtype=D64))


# ------------------------------------------------------------------------------------------------------------- sampling
def test_sampling_deterministic_linspace_and_lindisp():
    near = torch.full((2, 3), 0.5, dtype=D64)
    far = torch.full((2, 3), 4.0, dtype=D64)
    z = sample_along_rays(near, far, 8, perturb=False, lindisp=False)
    assert z.shape == (2, 3, 8) and z.dtype == D64
    assert torch.allclose(z, torch.linspace(0.5, 4.0, 8, dtype=D64).expand(2, 3, 8))
    z_ld = sample_along_rays(near, far, 8, perturb=False, lindisp=True)
    inv = 1.0 / z_ld
    assert torch.allclose(inv[..., 1:] - inv[..., :-1], (inv[..., 1] - inv[..., 0])[..., None].expand(2, 3, 7))
    assert torch.allclose(z_ld[..., 0], near) and torch.allclose(z_ld[..., -1], far)
    assert sample_along_rays(0.0, 1.0, 4, perturb=False, lindisp=False).tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    with pytest.raises(ValueError):
        sample_along_rays(near, far, 0, perturb=False, lindisp=False)


def test_sampling_perturbed_is_stratified_and_seeded():
    near, far = torch.zeros(4, 50), torch.ones(4, 50)
    z = sample_along_rays(near, far, 16, perturb=True, lindisp=False, generator=torch.Generator().manual_seed(0))
    assert torch.all(z[..., 1:] >= z[..., :-1]) and z.min() >= 0 and z.max() <= 1
    grid = torch.linspace(0, 1, 16)
    mids = 0.5 * (grid[1:] + grid[:-1])
    lower, upper = torch.cat([grid[:1], mids]), torch.cat([mids, grid[-1:]])
    assert torch.all(z >= lower) and torch.all(z <= upper)
    assert not torch.allclose(z, grid.expand_as(z))  # it did jitter
    z2 = sample_along_rays(near, far, 16, perturb=True, lindisp=False, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, z2)


# ----------------------------------------------------------------------------------------------------------- composite
def _opaque_raw(K: int, k: int, rgb_logit: torch.Tensor, dtype=D64) -> torch.Tensor:
    raw = torch.zeros(1, 1, K, 4, dtype=dtype)
    raw[..., :3] = -20.0  # other samples: colour ~0 but zero density anyway
    raw[0, 0, k, :3] = rgb_logit
    raw[0, 0, k, 3] = 1e6
    return raw


def test_composite_single_one_opaque_sample():
    K, k = 6, 3
    z = torch.linspace(0.0, 1.0, K, dtype=D64)[None, None]
    rays_d = torch.tensor([[[0.0, 0.0, 1.0]]], dtype=D64)
    logit = torch.tensor([0.0, 1.0, -1.0], dtype=D64)
    out = composite_single(_opaque_raw(K, k, logit), z, rays_d, 0.0)
    assert torch.allclose(out["rgb_map"][0, 0], torch.sigmoid(logit))
    assert torch.allclose(out["depth_map"][0, 0], z[0, 0, k])
    assert torch.allclose(out["acc_map"][0, 0], torch.tensor(1.0, dtype=D64))
    assert torch.allclose(out["weights"][0, 0], torch.nn.functional.one_hot(torch.tensor(k), K).to(D64))
    assert out["alpha"].shape == (1, 1, K) and out["rgb"].shape == (1, 1, K, 3)


def test_composite_single_two_samples_by_hand():
    # z = (0, 0.5), |d| = 2 -> dists = (0.5*2, 1e10*2) = (1, 2e10)
    # sigma = (ln 2, 1): alpha_0 = 1 - exp(-ln2 * 1) = 0.5 ; alpha_1 = 1 - exp(-2e10) = 1
    # T = (1, 0.5 + 1e-10); weights = (0.5, 0.5 + 1e-10)
    # rgb logits 0 -> 0.5 and ln 3 -> 0.75: rgb_map = 0.5*0.5 + 0.5*0.75 = 0.625
    # depth = 0.5*0 + 0.5*0.5 = 0.25 ; acc = 1
    raw = torch.tensor([[[[0.0, 0.0, 0.0, math.log(2.0)], [math.log(3.0)] * 3 + [1.0]]]], dtype=D64)
    z = torch.tensor([[[0.0, 0.5]]], dtype=D64, requires_grad=True)
    rays_d = torch.tensor([[[0.0, 2.0, 0.0]]], dtype=D64)
    out = composite_single(raw, z, rays_d, 0.0)
    assert torch.allclose(out["weights"], torch.tensor([[[0.5, 0.5 + 1e-10]]], dtype=D64), atol=1e-14)
    assert torch.allclose(out["rgb_map"], torch.full((1, 1, 3), 0.625, dtype=D64))
    assert torch.allclose(out["depth_map"], torch.tensor([[0.25]], dtype=D64))
    assert torch.allclose(out["acc_map"], torch.tensor([[1.0]], dtype=D64))
    assert not out["depth_map"].requires_grad and not out["acc_map"].requires_grad  # detached as the original
    assert torch.allclose(sample_distances(z.detach(), rays_d), torch.tensor([[[1.0, 2e10]]], dtype=D64))


@pytest.mark.parametrize("b", [1.0, 0.0])
def test_composite_blended_one_opaque_sample(b):
    K, k_d, k_s = 5, 1, 3
    z = torch.linspace(0.0, 1.0, K, dtype=D64)[None, None]
    rays_d = torch.tensor([[[0.0, 0.0, -1.0]]], dtype=D64)
    logit_d = torch.tensor([2.0, 0.0, -2.0], dtype=D64)
    logit_s = torch.tensor([-1.0, 1.0, 0.5], dtype=D64)
    raw_d, raw_s = _opaque_raw(K, k_d, logit_d), _opaque_raw(K, k_s, logit_s)
    out = composite_blended(raw_s, raw_d, torch.full((1, 1, K), b, dtype=D64), z, rays_d, 0.0)
    assert set(out) == set(BLENDED_OUTPUT_KEYS)
    k_full, logit_full = (k_d, logit_d) if b == 1.0 else (k_s, logit_s)
    assert torch.allclose(out["rgb_map_full"][0, 0], torch.sigmoid(logit_full))
    assert torch.allclose(out["depth_map_full"][0, 0], z[0, 0, k_full])
    assert torch.allclose(out["acc_map_full"][0, 0], torch.tensor(1.0, dtype=D64))
    assert torch.allclose(out["dynamicness_map"][0, 0], torch.tensor(b, dtype=D64))
    assert torch.allclose(out["rgb_map_dyreg_d"][0, 0], b * torch.sigmoid(logit_d))
    # the single-branch maps ignore the blending
    assert torch.allclose(out["rgb_map_d"][0, 0], torch.sigmoid(logit_d))
    assert torch.allclose(out["depth_map_s"][0, 0], z[0, 0, k_s])
    assert torch.allclose(out["blending_map"], z * b)


def test_composite_blended_two_samples_by_hand():
    # z = (0, 1), |d| = 1 -> dists = (1, 1e10); blending b = (0.5, 0.5)
    # dynamic sigma = (ln 2, 0): alpha_d = (0.5, 0); static sigma = (0, ln 4)... alpha_s = (0, 1 - 4^-1e10 = 1)
    # T_full factor_0 = (1 - 0.5*0.5)(1 - 0*0.5) = 0.75 -> T_full = (1, 0.75 + 1e-10)
    # weights_full = (0.5*0.5 + 0, 0 + 1*0.5) * T_full = (0.25, 0.375)
    # colours: dynamic logit 0 -> 0.5 ; static logit ln 3 -> 0.75
    # rgb_full = 1*0.5*0.5*0.5 (dyn, sample 0) + 0.75*1*0.5*0.75 (static, sample 1) = 0.125 + 0.28125 = 0.40625
    # depth_full = 0.25*0 + 0.375*1 = 0.375 ; acc_full = 0.625 ; dynamicness = 0.25*0.5 + 0.375*0.5 = 0.3125
    # weights_d = (0.5, 0) ; weights_s = (0, 1) ; rgb_dyreg = 0.5*0.5*0.5 = 0.125
    raw_d = torch.tensor([[[[0.0, 0.0, 0.0, math.log(2.0)], [0.0, 0.0, 0.0, 0.0]]]], dtype=D64)
    raw_s = torch.tensor([[[[0.0, 0.0, 0.0, 0.0], [math.log(3.0)] * 3 + [math.log(4.0)]]]], dtype=D64)
    z = torch.tensor([[[0.0, 1.0]]], dtype=D64)
    blending = torch.full((1, 1, 2), 0.5, dtype=D64)
    out = composite_blended(raw_s, raw_d, blending, z, torch.tensor([[[1.0, 0, 0]]], dtype=D64), 0.0)
    assert torch.allclose(out["weights_full"], torch.tensor([[[0.25, 0.375]]], dtype=D64))
    assert torch.allclose(out["rgb_map_full"], torch.full((1, 1, 3), 0.40625, dtype=D64))
    assert torch.allclose(out["depth_map_full"], torch.tensor([[0.375]], dtype=D64))
    assert torch.allclose(out["acc_map_full"], torch.tensor([[0.625]], dtype=D64))
    assert torch.allclose(out["dynamicness_map"], torch.tensor([[0.3125]], dtype=D64))
    assert torch.allclose(out["weights_d"], torch.tensor([[[0.5, 0.0]]], dtype=D64))
    assert torch.allclose(out["weights_s"], torch.tensor([[[0.0, 1.0]]], dtype=D64))
    assert torch.allclose(out["rgb_map_dyreg_d"], torch.full((1, 1, 3), 0.125, dtype=D64))
    T = exclusive_transmittance(torch.tensor([0.5, 0.5], dtype=D64))
    assert torch.allclose(T, torch.tensor([1.0, 0.5 + 1e-10], dtype=D64), atol=0, rtol=1e-15)


def _random_raw(S=2, R=3, K=5, seed=0, dtype=D64):
    g = torch.Generator().manual_seed(seed)
    raw_s = torch.randn(S, R, K, 5, generator=g, dtype=dtype)
    raw_d = torch.randn(S, R, K, 11, generator=g, dtype=dtype)
    raw_s[..., 3] = 0.5 + torch.rand(S, R, K, generator=g, dtype=dtype)  # keep away from the relu kink
    raw_d[..., 3] = 0.5 + torch.rand(S, R, K, generator=g, dtype=dtype)
    blending = torch.rand(S, R, K, generator=g, dtype=dtype)
    z = torch.sort(torch.rand(S, R, K, generator=g, dtype=dtype), -1)[0]
    rays_d = torch.randn(S, R, 3, generator=g, dtype=dtype)
    return raw_s, raw_d, blending, z, rays_d


def test_shared_vs_independent_noise():
    raw_s, raw_d, blending, z, rays_d = _random_raw()
    run = lambda shared, std: composite_blended(  # noqa: E731
        raw_s, raw_d, blending, z, rays_d, std, shared_noise=shared, generator=torch.Generator().manual_seed(7)
    )
    a, b = run(True, 0.0), run(False, 0.0)
    assert all(torch.equal(a[k], b[k]) for k in a)
    a, b = run(True, 1.0), run(False, 1.0)
    assert torch.equal(a["weights_d"], b["weights_d"])  # the dynamic noise is drawn first in both modes
    assert not torch.allclose(a["weights_s"], b["weights_s"])
    # shared: the static sigma sees exactly the dynamic noise -> equal to adding that noise by hand
    noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(7), dtype=D64)
    raw_s_n, raw_d_n = raw_s.clone(), raw_d.clone()
    raw_s_n[..., 3] += noise
    raw_d_n[..., 3] += noise
    ref = composite_blended(raw_s_n, raw_d_n, blending, z, rays_d, 0.0)
    assert all(torch.allclose(a[k], ref[k]) for k in ref)


def test_composite_blended_gradcheck():
    raw_s, raw_d, blending, z, rays_d = _random_raw(S=1, R=2, K=4, seed=3)
    inputs = tuple(x.requires_grad_() for x in (raw_s[..., :4].contiguous(), raw_d[..., :4].contiguous(), blending))

    def fn(rs, rd, b):
        out = composite_blended(rs, rd, b, z, rays_d, 0.0)
        keys = ("rgb_map_full", "depth_map_full", "rgb_map_s", "dynamicness_map", "rgb_map_dyreg_d")
        return tuple(out[k] for k in keys)

    assert torch.autograd.gradcheck(fn, inputs)


def test_composite_rejects_bad_shapes():
    raw_s, raw_d, blending, z, rays_d = _random_raw()
    with pytest.raises(ValueError):
        composite_blended(raw_s, raw_d, blending[..., :-1], z, rays_d, 0.0)
    with pytest.raises(ValueError):
        composite_single(raw_d[..., :3], z, rays_d, 0.0)
    with pytest.raises(ValueError):
        composite_single(raw_d, z, rays_d[:, :1], 0.0)


# ---------------------------------------------------------------------------------------------------------------- flow
@pytest.mark.parametrize("ndc", [True, False])
def test_induce_flow_static_point_translated_camera(ndc):
    H, W, f = 60, 80, 50.0
    X, Y, Z = 0.4, -0.3, -5.0
    tx, ty = 0.2, -0.1
    c2w_nb = torch.tensor([[[1.0, 0, 0, tx], [0, 1.0, 0, ty], [0, 0, 1.0, 0.0]]], dtype=D64)
    p_world = torch.tensor([X, Y, Z], dtype=D64)
    p = world_to_ndc(p_world, H, W, f) if ndc else p_world
    K = 4
    pts = p.expand(1, 1, K, 3).clone()  # the same static point at every sample
    weights = torch.full((1, 1, K), 1.0 / K, dtype=D64)
    own = torch.tensor([[[X / -Z * f + W / 2, -Y / -Z * f + H / 2]]], dtype=D64)  # its pixel in the identity camera
    Hs, Ws, fs = torch.tensor([H]), torch.tensor([W]), torch.tensor([f], dtype=D64)
    flow = induce_flow(pts, weights, c2w_nb, Pinhole.centred(Hs, Ws, fs), own, ndc=ndc)
    # moving the camera by +tx shifts the image by -tx f/(-Z); by +ty shifts v by +ty f/(-Z)
    expected = torch.tensor([[[-tx * f / -Z, ty * f / -Z]]], dtype=D64)
    assert torch.allclose(flow, expected, atol=1e-9)


def test_induce_flow_batched_equals_per_scene():
    g = torch.Generator().manual_seed(5)
    S, R, K = 2, 6, 8
    pts = torch.rand(S, R, K, 3, generator=g, dtype=D64) * 1.6 - 0.8
    w = torch.rand(S, R, K, generator=g, dtype=D64) / K
    c2w = torch.stack([_pose(7), _pose(8)])
    grid = torch.rand(S, R, 2, generator=g, dtype=D64) * 50
    H, W, f = torch.tensor([[60], [40]]), torch.tensor([[80], [70]]), torch.tensor([[50.0], [45.0]], dtype=D64)
    flow = induce_flow(pts, w, c2w, Pinhole.centred(H, W, f), grid)
    assert flow.shape == (S, R, 2)
    for s in range(S):
        one = induce_flow(pts[s], w[s], c2w[s], Pinhole.centred(int(H[s]), int(W[s]), float(f[s])), grid[s])
        assert torch.allclose(flow[s], one)
    with pytest.raises(ValueError):
        induce_flow(pts, w[..., :-1], c2w, Pinhole.centred(H, W, f), grid)


# ------------------------------------------------------------------------------------------------------------ renderer
SHIFT_F = torch.tensor([0.01, -0.02, 0.03])
SHIFT_B = torch.tensor([-0.015, 0.005, 0.02])


def _dynamic_raw(pts_ref: torch.Tensor, extra: int = 0) -> torch.Tensor:
    """Analytic dynamic field: constant scene flow (+SHIFT_F to t+1, -SHIFT_B to t-1), time-dependent density."""
    xyz, t = pts_ref[..., :3], pts_ref[..., 3:4]
    rgb = torch.cat([xyz[..., :2] * 2.0, t], -1)
    sigma = 3.0 + 2.0 * torch.sin(4.0 * xyz[..., 2:3] + 3.0 * t)
    to_b = xyz - SHIFT_B.to(xyz)
    to_f = xyz + SHIFT_F.to(xyz)
    blend = torch.sigmoid(xyz[..., 0:1] - xyz[..., 2:3])
    parts = [rgb, sigma, to_b, to_f, blend]
    if extra:
        parts.append(xyz[..., :1].expand(*xyz.shape[:-1], extra))
    return torch.cat(parts, -1)


def _static_raw(pts_ref: torch.Tensor) -> torch.Tensor:
    xyz = pts_ref[..., :3]
    return torch.cat([torch.cos(xyz * 3.0), 2.0 + xyz[..., 2:3] ** 2, torch.zeros_like(xyz[..., :1])], -1)


def _rays(S=2, R=5, seed=0) -> RayBundle:
    g = torch.Generator().manual_seed(seed)
    o = torch.randn(S, R, 3, generator=g) * 0.2
    o[..., 2] = -1.0
    d = torch.randn(S, R, 3, generator=g) * 0.2
    d[..., 2] = 2.0
    return RayBundle(o, d, torch.nn.functional.normalize(torch.randn(S, R, 3, generator=g), dim=-1))


def _dyn_kwargs(extra=0, **kw):
    calls = []

    def joint_fn(pts_ref, viewdirs):
        calls.append(("joint", pts_ref[..., 3].clone()))
        return _static_raw(pts_ref), _dynamic_raw(pts_ref, extra)

    def dynamic_fn(pts_ref, viewdirs):
        calls.append(("dynamic", pts_ref[..., 3].clone()))
        return _dynamic_raw(pts_ref, extra)

    base = dict(n_samples=6, num_frames=12, joint_fn=joint_fn, dynamic_fn=dynamic_fn)
    base.update(kw)
    return base, calls


def test_render_rays_dynamic_analytic_flow_and_keys():
    S, R, K, N = 2, 5, 6, 12
    rays = _rays(S, R)
    t = torch.tensor([-0.5, 1.0 / 3.0])
    kw, calls = _dyn_kwargs()
    ret = render_rays_dynamic(rays, 0.0, 1.0, t, **kw)
    assert set(ret) == set(DYNAMIC_OUTPUT_KEYS)
    per_ray3 = {"rgb_map_full", "rgb_map_s", "rgb_map_d", "rgb_map_dyreg_d", "rgb_map_d_b", "rgb_map_d_f"}
    per_ray = {"depth_map_full", "acc_map_full", "depth_map_s", "acc_map_s", "depth_map_d", "acc_map_d",
               "dynamicness_map", "acc_map_d_b", "acc_map_d_f"}  # fmt: skip
    per_sample = {"weights_full", "weights_s", "weights_d", "blending_map", "z_vals", "blending", "blending_b",
                  "blending_f"}  # fmt: skip
    for key, value in ret.items():
        if key in per_ray3:
            assert value.shape == (S, R, 3), key
        elif key in per_ray:
            assert value.shape == (S, R), key
        elif key in per_sample:
            assert value.shape == (S, R, K), key
        else:
            assert value.shape == (S, R, K, 3), key
    # constant scene flow comes back as displacements; points move by it
    assert torch.allclose(ret["sceneflow_f"], SHIFT_F.expand(S, R, K, 3), atol=1e-6)
    assert torch.allclose(ret["sceneflow_b"], -SHIFT_B.expand(S, R, K, 3), atol=1e-6)
    assert torch.allclose(ret["raw_pts_f"], ret["raw_pts"] + SHIFT_F, atol=1e-6)
    assert torch.allclose(ret["raw_pts_b"], ret["raw_pts"] - SHIFT_B, atol=1e-6)
    assert torch.allclose(ret["raw_pts_f_f"], ret["raw_pts"] + 2 * SHIFT_F, atol=1e-6)
    assert torch.allclose(ret["raw_pts_b_b"], ret["raw_pts"] - 2 * SHIFT_B, atol=1e-6)
    assert torch.allclose(ret["sceneflow_b_f"], SHIFT_F.expand(S, R, K, 3), atol=1e-6)
    assert torch.allclose(ret["sceneflow_f_b"], -SHIFT_B.expand(S, R, K, 3), atol=1e-6)
    # samples: linspace in NDC t, points o + z d
    z = ret["z_vals"]
    assert torch.allclose(z, torch.linspace(0, 1, K).expand(S, R, K))
    assert torch.allclose(ret["raw_pts"], rays.origins[..., None, :] + z[..., None] * rays.directions[..., None, :])
    # one joint call at t, then the t-1 and t+1 dynamic calls at t -/+ 2/N
    assert [c[0] for c in calls] == ["joint", "dynamic", "dynamic"]
    assert torch.allclose(calls[0][1], t[:, None, None].expand(S, R, K))
    assert torch.allclose(calls[1][1], (t - 2.0 / N)[:, None, None].expand(S, R, K))
    assert torch.allclose(calls[2][1], (t + 2.0 / N)[:, None, None].expand(S, R, K))
    # neighbour renders and acc differences against direct compositing
    pts_b = torch.cat([ret["raw_pts_b"], (t - 2.0 / N)[:, None, None, None].expand(S, R, K, 1)], -1)
    ref_b = composite_single(_dynamic_raw(pts_b), z, rays.directions, 0.0)
    assert torch.allclose(ret["rgb_map_d_b"], ref_b["rgb_map"])
    assert torch.allclose(ret["acc_map_d_b"], (ref_b["weights"] - ret["weights_d"]).sum(-1).abs())
    assert ret["acc_map_d_b"].max() > 0  # the time-dependent density makes the t-1 render differ
    pts_ref = torch.cat([ret["raw_pts"], calls[0][1][..., None]], -1)
    assert torch.allclose(ret["blending"], _dynamic_raw(pts_ref)[..., 10])


def test_render_rays_dynamic_inference_features_and_blending_source():
    rays, t = _rays(1, 4), torch.tensor([0.0])
    kw, _ = _dyn_kwargs(extra=3, inference=True)
    ret = render_rays_dynamic(rays, 0.0, 1.0, t, **kw)
    features = {"features_d", "features_d_b", "features_d_f"}
    assert set(ret) == (set(DYNAMIC_OUTPUT_KEYS) - set(INFERENCE_SKIPPED_KEYS)) | features
    assert ret["features_d"].shape == (1, 4, 6, 3)
    kw, _ = _dyn_kwargs(dynerf_blending=False)
    ret = render_rays_dynamic(rays, 0.0, 1.0, t, **kw)
    assert torch.equal(ret["blending"], torch.zeros(1, 4, 6))  # static head's channel 4 is zero
    kw, _ = _dyn_kwargs()
    kw["dynamic_fn"] = lambda p, v: _dynamic_raw(p)[..., :10]
    with pytest.raises(ValueError):
        render_rays_dynamic(rays, 0.0, 1.0, t, **kw)
    with pytest.raises(ValueError):
        render_rays_dynamic(rays, 0.0, 1.0, torch.tensor([0.0, 1.0]), **_dyn_kwargs()[0])


def test_render_rays_dynamic_seeded_noise_and_gradients():
    rays, t = _rays(2, 3), torch.tensor([0.0, 0.5])
    kw, _ = _dyn_kwargs(perturb=True, raw_noise_std=1.0)
    a = render_rays_dynamic(rays, 0.0, 1.0, t, generator=torch.Generator().manual_seed(1), **kw)
    b = render_rays_dynamic(rays, 0.0, 1.0, t, generator=torch.Generator().manual_seed(1), **kw)
    c = render_rays_dynamic(rays, 0.0, 1.0, t, generator=torch.Generator().manual_seed(2), **kw)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.allclose(a["rgb_map_full"], c["rgb_map_full"])
    # gradients reach the field parameters through the full render
    scale = torch.tensor(1.0, requires_grad=True)
    kw, _ = _dyn_kwargs()
    kw["joint_fn"] = lambda p, v: (_static_raw(p) * scale, _dynamic_raw(p) * scale)
    render_rays_dynamic(rays, 0.0, 1.0, t, **kw)["rgb_map_full"].sum().backward()
    assert scale.grad is not None and scale.grad.abs() > 0


def test_render_rays_static_matches_compositing():
    rays, t = _rays(2, 4), torch.tensor([0.0, 0.5])
    seen = {}

    def static_fn(pts_ref, viewdirs):
        seen["pts_ref"] = pts_ref
        return _static_raw(pts_ref)

    ret = render_rays_static(rays, 0.0, 1.0, t, n_samples=5, static_fn=static_fn)
    assert set(ret) == set(STATIC_OUTPUT_KEYS)
    assert seen["pts_ref"].shape == (2, 4, 5, 4)
    assert torch.allclose(seen["pts_ref"][..., 3], t[:, None, None].expand(2, 4, 5))
    z = torch.linspace(0, 1, 5).expand(2, 4, 5)
    ref = composite_single(_static_raw(seen["pts_ref"]), z, rays.directions, 0.0)
    assert torch.allclose(ret["rgb_map_s"], ref["rgb_map"]) and torch.allclose(ret["depth_map_s"], ref["depth_map"])
    assert ret["rgb_s"].shape == (2, 4, 5, 3) and ret["acc_map_s"].shape == (2, 4)


def test_non_finite_outputs_raise():
    rays, t = _rays(1, 3), torch.tensor([0.0])
    kw, _ = _dyn_kwargs()
    kw["dynamic_fn"] = lambda p, v: _dynamic_raw(p) * float("nan")
    with pytest.raises(MonoNeRFError, match="non-finite values in"):
        render_rays_dynamic(rays, 0.0, 1.0, t, **kw)
    render_rays_dynamic(rays, 0.0, 1.0, t, check_finite=False, **kw)  # gated off: no error
    with pytest.raises(MonoNeRFError, match="non-finite values in rgb_map_s"):
        render_rays_static(rays, 0.0, 1.0, t, n_samples=4, static_fn=lambda p, v: _static_raw(p) * float("nan"))
    with pytest.raises(MonoNeRFError, match="depth_map"):
        check_finite_outputs({"depth_map": torch.tensor([1.0, float("inf")])})


def test_dynamic_fn_is_needed_only_for_the_neighbour_passes():
    rays, t = _rays(1, 3), torch.tensor([0.0])
    kw, _ = _dyn_kwargs(dynamic_fn=None)
    ret = render_rays_dynamic(rays, 0.0, 1.0, t, neighbour_passes=False, **kw)
    assert ret["rgb_map_full"].shape == (1, 3, 3) and "rgb_map_d_f" not in ret
    with pytest.raises(ValueError, match="need a dynamic_fn"):
        render_rays_dynamic(rays, 0.0, 1.0, t, **kw)


def test_finite_check_reads_one_value_back_for_all_outputs(monkeypatch):
    # on a GPU each value read back waits for the device: one read for the whole dict, the names only on failure
    reads = []
    for name in ("__bool__", "__int__", "__float__", "item", "tolist"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, _name=name, **k):
            reads.append(_name)
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    outputs = {f"out_{i}": torch.rand(3, 4) for i in range(30)}
    outputs["index"] = torch.arange(5)  # not floating point: not checked
    check_finite_outputs(outputs)
    assert len(reads) == 1
    outputs["out_17"][1, 2] = float("nan")
    with pytest.raises(MonoNeRFError, match="non-finite values in out_17 .*1 NaN, 0 Inf"):
        check_finite_outputs(outputs)


def test_prepare_rays_viewdirs_are_world_and_ndc():
    H, W = 6, 8
    f = torch.tensor([4.0, 5.0])
    c2w = torch.stack([_pose(9, torch.float32), _pose(10, torch.float32)])
    rays_o, rays_d = get_rays(H, W, f, c2w)
    rays = prepare_rays(rays_o, rays_d, Pinhole.centred(H, W, f), ndc=True)
    assert rays.origins.shape == rays.viewdirs.shape == (2, H * W, 3)
    assert torch.allclose(rays.viewdirs, torch.nn.functional.normalize(rays_d, dim=-1).reshape(2, -1, 3))
    o_ndc, d_ndc = ndc_rays(H, W, f, 1.0, rays_o, rays_d)
    assert torch.allclose(rays.origins, o_ndc.reshape(2, -1, 3))
    assert torch.allclose(rays.directions, d_ndc.reshape(2, -1, 3))
    world = prepare_rays(rays_o, rays_d, Pinhole.centred(H, W, f), ndc=False)
    assert torch.equal(world.directions, rays_d.reshape(2, -1, 3))


def test_full_image_chunked_equals_unchunked():
    H, W, S = 5, 7, 2
    c2w = torch.stack([torch.eye(3, 4), torch.cat([torch.eye(3), torch.tensor([[0.05], [0.0], [0.0]])], 1)])
    f = torch.tensor([[6.0], [7.0]])
    t = torch.tensor([-1.0, 0.5])
    kw, _ = _dyn_kwargs(inference=True)
    ray_fn = functools.partial(render_rays_dynamic, t=t, **kw)
    camera = Pinhole.centred(H, W, f)
    rays = prepare_rays(*camera.image_rays(c2w), camera)  # a full image's rays, as FieldRenderer.render_views casts

    def image(out):
        return {k: v.reshape((S, H, W) + tuple(v.shape[2:])) for k, v in out.items()}

    big = image(render_chunked(rays, ray_fn, chunk=H * W))
    with torch.inference_mode():
        small = image(render_chunked(rays, ray_fn, chunk=4, output_device="cpu"))
    assert set(big) == set(small)
    assert big["rgb_map_full"].shape == (S, H, W, 3) and big["weights_d"].shape == (S, H, W, 6)
    assert big["sceneflow_f"].shape == (S, H, W, 6, 3)
    for k in big:
        assert torch.allclose(big[k], small[k], atol=1e-6), k
    assert small["rgb_map_full"].is_inference() and not big["rgb_map_full"].is_inference()
    # pixel (x=3, y=2) of the identity camera: its ray starts at NDC ((3-3.5)/3.5, -(2-2.5)/2.5, -1)
    assert torch.allclose(big["raw_pts"][0, 2, 3, 0], torch.tensor([-0.5 / 3.5, 0.5 / 2.5, -1.0]), atol=1e-6)
    with pytest.raises(ValueError):
        render_chunked(RayBundle(*(torch.zeros(S, 3, 3),) * 3), ray_fn, chunk=0)


def test_constant_like_equals_as_tensor():
    import numpy as np

    from mononerf.utils.tensors import constant_like

    like = torch.zeros(2, dtype=torch.float64)
    for value in (480, 0.1, np.float32(0.1), np.float64(1 / 3), (480, 270.5), [0.0, 1.0], np.array([1.5, 2.0]),
                  torch.tensor([3.0, 4.0]), torch.tensor(2)):
        got, want = constant_like(value, like), torch.as_tensor(value, dtype=like.dtype)
        assert got.dtype == torch.float64 and got.shape == want.shape and torch.equal(got, want), value
    assert constant_like(0.1, torch.zeros(1)).item() == torch.tensor(0.1).item()  # float32 rounding as as_tensor's


def test_every_consumer_selects_outputs_that_the_renderers_make():
    """One list of output names (mononerf/render/outputs.py): the maps each consumer keeps are made by a renderer."""
    from mononerf.edit.fields import EDIT_KEYS
    from mononerf.eval.renders import MULTIVIEW_MAPS
    from mononerf.eval.visuals import reads
    from mononerf.losses.total import TERMS
    from mononerf.render.outputs import DERIVED_MAPS

    per_sample = set(DYNAMIC_OUTPUT_KEYS) | set(STATIC_OUTPUT_KEYS)
    assert set(PER_RAY_KEYS) - per_sample == set(DERIVED_MAPS) == {"expected_pts_f", "expected_pts_b",
                                                                   "sceneflow_map_f"}
    assert {k for pair in DERIVED_MAPS.values() for k in pair} <= per_sample  # made from per-sample outputs
    for name, keys in [("edit", EDIT_KEYS), ("view", reads()), ("multiview", MULTIVIEW_MAPS.values()),
                       ("videos", reads())]:
        assert set(keys) <= set(PER_RAY_KEYS), (name, set(keys) - set(PER_RAY_KEYS))
    assert {k for term in TERMS for k in term.needs} <= per_sample
