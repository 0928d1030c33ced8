"""Feature lookups from a channels-last map's rows (models/lookup.py): grid_sample's bits, and where they are used."""

from __future__ import annotations

import dataclasses
import platform

import pytest
import torch
import torch.nn.functional as F

import mononerf.models.features as features
import mononerf.models.lookup as lookup
from mononerf.models.features import FeatureVolume, sample_frame_features, temporal_features
from mononerf.models.projected import Workspace, fold_latent_projections
from tests.test_model import _render, _tiny_model, tiny_setup  # noqa: F401  (tiny_setup: a fixture)

torch.set_num_threads(2)
# where the rows are expected to give grid_sample's bits: x86 builds with vector kernels (checked here with the
# AVX-512 and AVX2 kernels, ATEN_CPU_CAPABILITY=avx2); elsewhere rows_exact decides and the tests check its verdict
X86 = (platform.machine().lower() in ("x86_64", "amd64")
       and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"))
needs_rows = pytest.mark.skipif(not lookup.rows_exact(torch.float32, torch.device("cpu")),
                                reason="this build's lookups stay with grid_sample")


def _grid(n: int, gen: torch.Generator) -> torch.Tensor:
    """(n, 2) normalised points: inside, on the border and the corners, beyond it, infinite and NaN."""
    g = torch.rand(n, 2, generator=gen) * 3 - 1.5
    special = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [0.0, 0.0], [1.0, 0.37],
                            [0.37, 1.0], [9.0, -9.0], [float("inf"), 0.2], [-float("inf"), 0.3],
                            [float("nan"), 0.5], [0.5, float("nan")]])
    g[:len(special)] = special
    return g


def _reference(m: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(m, g[None, :, None], mode="bilinear", padding_mode="border", align_corners=True)[0, :, :, 0].T


@pytest.mark.parametrize("c,h,w", [(1, 1, 1), (3, 2, 5), (19, 7, 9), (128, 45, 80), (832, 9, 6)])
def test_row_lookups_are_grid_samples_bits(c, h, w):
    # the weighted sum of four rows is grid_sample's arithmetic: the same bits, for any channel count (the vector
    # kernels' tails), at the border, beyond it and at non-finite points (NaN reads pixel 0, as grid_sample)
    gen = torch.Generator().manual_seed(c)
    m = torch.randn(1, c, h, w, generator=gen).contiguous(memory_format=torch.channels_last)
    g = _grid(3000, gen)
    ref = _reference(m, g)
    out = torch.full((g.shape[0], c), float("nan"))
    got = lookup.sample_rows(m, *lookup.corner_rows(g, h, w), out)
    assert got is out
    exact = lookup.rows_exact(torch.float32, torch.device("cpu"))
    assert exact or not X86  # x86 builds with vector kernels: the rows give grid_sample's bits
    if not exact:  # elsewhere the build decides: where they differ, the lookups stay with grid_sample
        assert not lookup.use_rows(m, g)
        return
    assert torch.equal(got, ref), (got - ref).abs().max()
    # a channel-major destination (a transposed view), written in blocks
    cm = torch.full((c, g.shape[0]), float("nan"))
    assert torch.equal(lookup.sample_rows(m, *lookup.corner_rows(g, h, w), cm.T), ref)


def test_rows_exact_finds_a_sum_in_another_order(monkeypatch):
    # the check that guards the fast path must fail when the rows are summed otherwise than grid_sample sums them
    assert lookup.rows_exact(torch.float32, torch.device("cpu")) or not X86
    assert not lookup.rows_exact(torch.float64, torch.device("cpu"))
    assert not lookup.rows_exact(torch.float32, torch.device("meta"))

    def reversed_sum(idx, table, mode, per_sample_weights):  # the same products, summed from the last corner
        v = table[idx] * per_sample_weights[..., None]
        return ((v[:, 3] + v[:, 2]) + v[:, 1]) + v[:, 0]

    monkeypatch.setattr(lookup.F, "embedding_bag", reversed_sum)
    lookup.rows_exact.cache_clear()
    try:
        assert not lookup.rows_exact(torch.float32, torch.device("cpu"))
    finally:
        lookup.rows_exact.cache_clear()


def test_when_the_rows_serve_a_lookup():
    m = torch.randn(1, 8, 4, 5)
    g = torch.rand(6, 2)
    cl = m.contiguous(memory_format=torch.channels_last)
    exact = lookup.rows_exact(torch.float32, torch.device("cpu"))
    assert lookup.use_rows(cl, g) == exact
    assert not lookup.use_rows(m, g)  # channels-first: grid_sample
    assert not lookup.use_rows(cl.double(), g.double())
    assert not lookup.use_rows(cl.requires_grad_(), g)  # autograd through the map
    assert not lookup.use_rows(cl.detach(), g.requires_grad_())  # ... or through the points
    with torch.no_grad():
        assert lookup.use_rows(cl, g) == exact


def _volume(gen: torch.Generator) -> FeatureVolume:
    """Two levels on a 9x11 grid of 3 scenes and 4 frames: one on the grid (channels-last), one coarse (resized)."""
    fine = torch.randn(3, 40, 4, 9, 11, generator=gen)
    coarse = torch.randn(3, 150, 4, 5, 6, generator=gen)
    return FeatureVolume([fine, coarse], (9, 11))


@needs_rows
def test_feature_volume_lookups_equal_grid_sample(monkeypatch):
    # sample_frame_features and temporal_features (the reshape quirk's channel-major buffer, the raw features at the
    # ends read into it) through the rows and through grid_sample: the same bits
    gen = torch.Generator().manual_seed(1)
    vol = _volume(gen)
    S, P, T = 3, 500, 4
    scaling = torch.tensor([11 / 10 * 2, 9 / 8 * 2])
    uv, uv_b, uv_f = (torch.rand(S, P, 2, generator=gen) * 70 - 5 for _ in range(3))
    frame = torch.tensor([0, 2, 3])
    calls = []
    real = lookup.sample_rows
    monkeypatch.setattr(features, "sample_rows", lambda *a: calls.append(1) or real(*a))

    def run():
        with torch.no_grad():
            cur = sample_frame_features(vol, frame, uv, (60, 50), scaling)
            quirk = temporal_features(vol, frame, T, None, uv_b, uv_f, (60, 50), scaling, uv=uv)
            plain = temporal_features(vol, frame, T, cur, uv_b, uv_f, (60, 50), scaling, reshape_quirk=False)
        return cur, quirk, plain

    fast = run()
    # per level (two): frame t of 3 scenes; t-1 and t+1 inside the video for 2 scenes each, twice (quirk, plain);
    # frame t for the scene at each end (quirk: no feat_curr)
    assert len(calls) == 2 * (3 + 2 * (2 + 2) + 2)
    monkeypatch.setattr(features, "use_rows", lambda m, g: False)
    for a, b in zip(fast, run()):
        assert torch.equal(a, b)


@needs_rows
def test_a_render_through_the_rows_is_the_grid_sample_render(tiny_setup, monkeypatch):  # noqa: F811
    # a render of native feature volumes with folded projections (point-major lookup buffers) equals, bit for bit,
    # the same render with every lookup through grid_sample
    images, c2w, focal, rays, t, T = tiny_setup
    model = _tiny_model()
    feats = model.encode(images, c2w, focal)
    native = dataclasses.replace(feats, latent=FeatureVolume([feats.latent], feats.latent.shape[-2:]),
                                 latent2d=FeatureVolume([feats.latent2d], feats.latent2d.shape[-2:]))
    calls = []
    real = lookup.sample_rows
    monkeypatch.setattr(features, "sample_rows", lambda *a: calls.append(1) or real(*a))

    def render():
        with torch.inference_mode():
            f = fold_latent_projections(model, native, 10 ** 9, Workspace())
            assert f.dynamic_proj is not None and f.static_proj is not None
            return _render(model, f, rays, t, T, perturb=False, raw_noise_std=0.0)

    fast = render()
    assert calls
    monkeypatch.setattr(features, "use_rows", lambda m, g: False)
    slow = render()
    assert fast.keys() == slow.keys()
    for k in slow:
        assert torch.equal(fast[k], slow[k]), k
