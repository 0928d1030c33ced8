"""Tests of the image encoders and their weight loading (method.md §2.1, §2.2, §8.5, §8.6).

Weight files are written by the tests from randomly initialised models with the real key layout.
Spatial sizes are tiny so the R50 runs fast on CPU.
"""

from __future__ import annotations

import collections
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision

from mononerf.errors import ConfigError, MissingWeightsError, MonoNeRFError
from mononerf.models.encoders import (
    CLIP_MEAN,
    CLIP_STD,
    SpatialTemporalEncoder,
    encoder_clip_size,
    preprocess_clip,
    resolve_latent_layers,
)
from mononerf.models.slowonly import ResNet3dSlowOnly
from mononerf.models.spatial_encoder import BACKBONES_2D, SpatialEncoder
from mononerf.models.weights import (
    KNOWN_WEIGHT_URLS,
    RESNET18_FILE,
    SLOWONLY_R50_FILE,
    check_state_matches,
    default_checkpoint_dirs,
    find_weight_file,
    load_checkpoint_state,
    strip_mmaction_backbone,
)

CLIP_SHAPE = (1, 3, 4, 64, 48)  # (B, 3, T, Hc, Wc)


def _randomised_backbone_state(seed: int) -> dict[str, torch.Tensor]:
    """A SlowOnly state dict with non-trivial BN statistics (so eval-mode BN is not the identity)."""
    gen = torch.Generator().manual_seed(seed)
    state = ResNet3dSlowOnly().state_dict()
    out = {}
    for key, value in state.items():
        if key.endswith("running_mean"):
            value = torch.randn(value.shape, generator=gen) * 0.1
        elif key.endswith("running_var"):
            value = torch.rand(value.shape, generator=gen) + 0.5
        elif key.endswith("num_batches_tracked"):
            value = torch.tensor(1000)
        elif key.endswith("bn.weight"):
            value = torch.rand(value.shape, generator=gen) + 0.5
        out[key] = value.clone()
    return out


def _write_mmaction_checkpoint(path: Path, backbone_state: dict[str, torch.Tensor], meta: dict | None = None) -> Path:
    """Write a file in the official MMAction2 layout: meta + backbone.* + cls_head.*."""
    state = {f"backbone.{k}": v for k, v in backbone_state.items()}
    state["cls_head.fc_cls.weight"] = torch.randn(400, 2048) * 0.01
    state["cls_head.fc_cls.bias"] = torch.zeros(400)
    if meta is None:
        meta = {"mmcv_version": "1.1.1", "time": "Sat Sep 12 10:00:00 2020", "epoch": 150, "iter": 280800,
                "config": "model = dict(type='Recognizer3D')", "seed": 0, "hook_msgs": {"last_ckpt": "epoch_150.pth"}}
    torch.save({"meta": meta, "state_dict": collections.OrderedDict(state)}, path)
    return path


@pytest.fixture(scope="module")
def backbone_state() -> dict[str, torch.Tensor]:
    return _randomised_backbone_state(seed=0)


@pytest.fixture(scope="module")
def slowonly_ckpt(tmp_path_factory, backbone_state) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / SLOWONLY_R50_FILE
    return _write_mmaction_checkpoint(path, backbone_state)


@pytest.fixture(scope="module")
def native_encoder(slowonly_ckpt) -> SpatialTemporalEncoder:
    return SpatialTemporalEncoder(num_layers=[0, 1, 2], pretrained=True, pretrained_path=slowonly_ckpt)


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return torch.randn(CLIP_SHAPE, generator=torch.Generator().manual_seed(1))


# ------------------------------------------------------------------------------------------- SlowOnly layout
def test_slowonly_state_dict_matches_mmaction():
    pytest.importorskip("mmaction")
    from mononerf.models.encoders import build_mmaction_slowonly

    ours = {k: tuple(v.shape) for k, v in ResNet3dSlowOnly().state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in build_mmaction_slowonly().state_dict().items()}
    assert len(ours) == 318
    assert list(ours) == list(theirs)
    assert ours == theirs


def test_official_checkpoint_loads_strictly_into_native(native_encoder, backbone_state):
    loaded = native_encoder.model.backbone.state_dict()
    assert set(loaded) == set(backbone_state)
    for key, value in backbone_state.items():
        assert torch.equal(loaded[key], value), key
    # keys as the original saved them (method.md §5.4: encoder.model.*)
    assert "model.backbone.layer3.0.conv1.conv.weight" in native_encoder.state_dict()
    assert native_encoder.model.backbone.layer3[0].conv1.conv.weight.shape == (256, 512, 3, 1, 1)


def test_native_and_mmaction_give_identical_features(native_encoder, slowonly_ckpt, clip):
    pytest.importorskip("mmaction")
    mm = SpatialTemporalEncoder(num_layers=[0, 1, 2], impl="mmaction", pretrained=True, pretrained_path=slowonly_ckpt)
    assert type(mm.model.backbone).__module__.startswith("mmaction")
    for bn_train in (False, True):
        a = native_encoder.encode(clip, batchnorm_train=bn_train)
        b = mm.encode(clip, batchnorm_train=bn_train)
        for key in ("latent", "flow_latent", "latent_scaling"):
            assert a[key].shape == b[key].shape
            torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------- shapes
def test_latent_shapes_list_layers(native_encoder, clip):
    out = native_encoder.encode(clip, batchnorm_train=False)
    assert native_encoder.latent_size == 832
    assert out["latent"].shape == (1, 832, 4, 32, 24)
    assert out["flow_latent"].shape == (1, 2048, 4, 4, 3)
    # [W_l/(W_l-1)*2, H_l/(H_l-1)*2] with W_l = 24, H_l = 32
    torch.testing.assert_close(out["latent_scaling"], torch.tensor([24 / 23 * 2, 32 / 31 * 2]))


def test_latent_is_concatenation_of_resized_layers(native_encoder, clip):
    enc = native_encoder
    was = enc.training
    enc.eval()
    with torch.no_grad():
        feats = enc.backbone_features(clip)
        latent = enc(clip)["latent"]
    enc.train(was)
    # conv1 (64) and layer1 (256) already live on the conv1 grid: copied exactly.
    torch.testing.assert_close(latent[:, :64], feats[0])
    torch.testing.assert_close(latent[:, 64:320], feats[1])
    # layer2 (16x12) upsampled with align_corners=True: grid corners coincide with the source corners.
    l2 = latent[:, 320:]
    assert feats[2].shape[-2:] == (16, 12)
    for (i, j), (si, sj) in {(0, 0): (0, 0), (-1, -1): (-1, -1), (0, -1): (0, -1), (-1, 0): (-1, 0)}.items():
        torch.testing.assert_close(l2[..., i, j], feats[2][..., si, sj])
    # flow_latent is the layer4 output itself
    with torch.no_grad():
        enc.eval()
        torch.testing.assert_close(enc(clip)["flow_latent"], feats[4])
    enc.train(was)


@pytest.mark.parametrize(
    "num_layers, layers",
    [(1, [0]), (2, [0, 1]), (3, [0, 1, 2]), (4, [0, 1, 2, 3]), (5, [0, 1, 2, 3, 4]), ([4], [4]), ([2, 0, 2], [0, 2])],
)
def test_resolve_latent_layers(num_layers, layers):
    assert resolve_latent_layers(num_layers) == layers


@pytest.mark.parametrize("num_layers, channels", [(2, 64 + 256), (5, 64 + 256 + 512 + 1024 + 2048), ([2, 0], 64 + 512)])
def test_num_layers_int_and_list_shapes(num_layers, channels):
    enc = SpatialTemporalEncoder(num_layers=num_layers, pretrained=False)
    assert enc.latent_size == channels
    # odd sizes: conv arithmetic out = floor((in + 2p - k) / s) + 1 → 36x30 → conv1 18x15, layer2 9x8,
    # layer3 5x4, layer4 3x2
    out = enc.encode(torch.randn(1, 3, 2, 36, 30), batchnorm_train=True)
    assert out["latent"].shape == (1, channels, 2, 18, 15)
    assert out["flow_latent"].shape == (1, 2048, 2, 3, 2)


@pytest.mark.parametrize("bad", [0, 6, True, [], [5], [-1], ["1"]])
def test_bad_num_layers_rejected(bad):
    with pytest.raises(ConfigError, match="num_layers"):
        resolve_latent_layers(bad)


def test_unknown_impl_and_bad_clip_rejected(native_encoder):
    with pytest.raises(ConfigError, match="unknown encoder impl 'mmcv'"):
        SpatialTemporalEncoder(impl="mmcv", pretrained=False)
    with pytest.raises(ValueError, match="clip"):
        native_encoder(torch.randn(1, 4, 2, 16, 16))


def test_the_model_section_builds_the_encoders(slowonly_ckpt, native_encoder, tmp_path):
    """model.encoder.* and model.encoder_2d.* (the original's keys; its config_path and normalize are not read) build
    the two encoders of MonoNeRF.from_conf: the weight file named, the layers chosen, frozen as info.freeze_enc says."""
    from mononerf.config import load_config
    from mononerf.models.mononerf import MonoNeRF
    from mononerf.quirks import Quirks
    from tests.test_train import tiny_argv

    cfg = load_config(tiny_argv(tmp_path, tmp_path, extra=[
        "model.encoder.num_layers=[0, 1, 2]", "model.encoder.pretrained=true",
        f'model.encoder.pretrained_path="{slowonly_ckpt}"', 'model.encoder.config_path="ignored.py"',
        'model.encoder_2d.normalize="Ture"', "info.freeze_enc=true"]))
    model = MonoNeRF.from_conf(cfg, Quirks.from_conf(cfg))
    enc, enc2d = model.encoder, model.encoder2d
    assert enc.latent_size == 832 and enc.impl == "native" and enc.freeze and enc2d.latent_size == 512
    # the weights of the named file (the fixture's BatchNorm statistics may have moved in earlier tests; the weights not)
    assert all(torch.equal(a, b) for a, b in zip(enc.parameters(), native_encoder.parameters()))


# ------------------------------------------------------------------------------------------- bad weight files
def test_missing_key_named(tmp_path, backbone_state):
    state = dict(backbone_state)
    del state["layer2.3.conv2.bn.running_var"]
    path = _write_mmaction_checkpoint(tmp_path / "bad.pth", state)
    with pytest.raises(MonoNeRFError, match=r"missing keys: layer2\.3\.conv2\.bn\.running_var"):
        SpatialTemporalEncoder(pretrained=True, pretrained_path=path)


def test_misshaped_and_unexpected_keys_named():
    module = ResNet3dSlowOnly()
    state = dict(module.state_dict())
    state["layer1.0.conv1.conv.weight"] = torch.zeros(64, 64, 3, 1, 1)
    state["layer5.0.conv1.conv.weight"] = torch.zeros(1)
    with pytest.raises(MonoNeRFError) as info:
        check_state_matches(module, state, source="x.pth")
    msg = str(info.value)
    assert "layer1.0.conv1.conv.weight (file (64, 64, 3, 1, 1) vs model (64, 64, 1, 1, 1))" in msg
    assert "unexpected keys: layer5.0.conv1.conv.weight" in msg
    assert "x.pth" in msg


def test_strip_mmaction_backbone():
    z = torch.zeros(1)
    state = {"backbone.conv1.conv.weight": z, "cls_head.fc_cls.bias": z, "other": z}
    assert sorted(strip_mmaction_backbone(state)) == ["conv1.conv.weight", "other"]


def test_missing_files_name_file_folder_and_address(tmp_path):
    with pytest.raises(MissingWeightsError) as info:
        SpatialTemporalEncoder(pretrained=True, search_dirs=[tmp_path / "ck"])
    msg = str(info.value)
    assert SLOWONLY_R50_FILE in msg and KNOWN_WEIGHT_URLS[SLOWONLY_R50_FILE] in msg and str(tmp_path / "ck") in msg
    with pytest.raises(MissingWeightsError) as info:
        SpatialEncoder(pretrained=True, search_dirs=[tmp_path])
    msg = str(info.value)
    assert RESNET18_FILE in msg and "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg


def test_find_weight_file_search_order(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (second / "w.pth").write_bytes(b"x")
    assert find_weight_file("w.pth", [first, second]) == second / "w.pth"
    (first / "w.pth").write_bytes(b"x")
    assert find_weight_file("checkpoints/w.pth", [first, second]) == first / "w.pth"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert default_checkpoint_dirs(include_torch_hub=True)[-1] == tmp_path / "th" / "hub" / "checkpoints"


class _NotAllowed:  # a pickled class: weights-only loading must refuse it
    pass


def test_checkpoint_meta_types(tmp_path):
    w = {"backbone.x": torch.ones(2)}
    # numpy scalars in meta (seeds, scores) are allowed on top of plain Python types
    torch.save({"meta": {"seed": np.int64(3), "best_score": np.float64(0.5)}, "state_dict": w}, tmp_path / "np.pth")
    assert torch.equal(load_checkpoint_state(tmp_path / "np.pth")["backbone.x"], torch.ones(2))
    torch.save({"meta": {"obj": _NotAllowed()}, "state_dict": w}, tmp_path / "obj.pth")
    with pytest.raises(MonoNeRFError, match="_NotAllowed"):
        load_checkpoint_state(tmp_path / "obj.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(MonoNeRFError, match="junk.pth"):
        load_checkpoint_state(tmp_path / "junk.pth")


def test_mmaction_missing_gives_install_hint(monkeypatch):
    for name in ("mmaction", "mmaction.models", "mmaction.registry"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MonoNeRFError, match=r"pip install -e \.\[mmaction\]"):
        SpatialTemporalEncoder(impl="mmaction", pretrained=False)


# ------------------------------------------------------------------------------------------- BatchNorm / freeze
def test_batchnorm_train_vs_eval(native_encoder, clip):
    enc = native_encoder
    bn = enc.model.backbone.conv1.bn
    enc.eval()
    before = bn.running_mean.clone()
    eval_out = enc.encode(clip, batchnorm_train=False)["latent"]
    assert torch.equal(bn.running_mean, before)  # eval mode leaves the statistics alone
    train_out = enc.encode(clip, batchnorm_train=True)["latent"]
    assert not enc.training  # mode restored
    assert not torch.allclose(eval_out, train_out, atol=1e-3)
    # quirk §8.6 reproduced: the one-shot encode updates the running statistics
    assert not torch.allclose(bn.running_mean, before)
    # batch statistics: each conv1 channel is normalised over the batch → mean of (pre-ReLU) bn output ≈ beta
    x = enc.model.backbone.conv1.conv(clip)
    y = torch.nn.functional.batch_norm(x, None, None, bn.weight, bn.bias, training=True)
    torch.testing.assert_close(train_out[:, :64], torch.relu(y), atol=1e-5, rtol=1e-5)


def test_frozen_encoder_gets_no_grad(clip):
    enc = SpatialTemporalEncoder(num_layers=1, pretrained=False, freeze=True)
    assert all(not p.requires_grad for p in enc.parameters())
    out = enc.encode(clip[:, :, :2, :32, :32], batchnorm_train=True)
    assert not out["latent"].requires_grad
    w = torch.ones(1, requires_grad=True)
    (out["latent"].sum() * w).backward()
    assert w.grad is not None
    assert all(p.grad is None for p in enc.parameters())
    # contrast: an unfrozen encoder does receive gradients
    live = SpatialEncoder(pretrained=False)
    live(torch.rand(1, 1, 32, 32, 3))["latent"].sum().backward()
    assert live.features.conv1.weight.grad is not None
    frozen = SpatialEncoder(pretrained=False, freeze=True)
    assert not frozen(torch.rand(1, 1, 32, 32, 3))["latent"].requires_grad


# ------------------------------------------------------------------------------------------- ResNet18
def test_resnet18_weights_and_shapes(tmp_path):
    ref = torchvision.models.resnet18(weights=None)
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    torch.save(ref.state_dict(), tmp_path / RESNET18_FILE)  # torchvision's file is a bare state dict (with fc)
    enc = SpatialEncoder(pretrained=True, search_dirs=[tmp_path])
    assert torch.equal(enc.features.layer3[1].bn2.running_var, ref.layer3[1].bn2.running_var)
    assert not any(k.startswith("features.fc") for k in enc.state_dict())
    assert enc.latent_size == 512

    images = torch.rand(2, 3, 40, 56, 3, generator=torch.Generator().manual_seed(0))
    out = enc.encode(images, batchnorm_train=False)
    # conv1 s2: 40x56 → 20x28; maxpool s2: → 10x14
    assert out["latent"].shape == (2, 512, 3, 10, 14)
    torch.testing.assert_close(out["latent_scaling"], torch.tensor([14 / 13 * 2, 10 / 9 * 2]))
    # first 64 channels = ImageNet-normalised conv1/bn1/relu/maxpool of frame (b=1, t=2)
    ref.eval()
    x = images[1, 2].permute(2, 0, 1)[None]
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    x = (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    with torch.no_grad():
        stem = ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))
    torch.testing.assert_close(out["latent"][1, :64, 2], stem[0], atol=1e-5, rtol=1e-5)
    # a misshaped file is refused with the key named
    bad = ref.state_dict()
    bad["fc.weight"] = torch.zeros(10, 512)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(MonoNeRFError, match=r"fc\.weight \(file \(10, 512\) vs model \(1000, 512\)\)"):
        SpatialEncoder(pretrained=True, weights_path=tmp_path / "bad.pth")


def test_each_2d_backbone_builds_by_name_with_its_latent_levels(tmp_path):
    """model.encoder_2d.type picks a torchvision ResNet from BACKBONES_2D: its levels' channels are what forward
    concatenates, its weights load from torchvision's file name, and the config offers exactly these names."""
    from mononerf.config.key import BACKBONES_2D_NAMES

    assert tuple(BACKBONES_2D) == BACKBONES_2D_NAMES
    images = torch.rand(1, 2, 32, 32, 3, generator=torch.Generator().manual_seed(0))
    for name in ("resnet18", "resnet34", "resnet50"):  # (101 and 152 differ from 50 in depth only)
        enc = SpatialEncoder(backbone=name, pretrained=False, num_layers=4)
        assert enc.latent_size == sum(BACKBONES_2D[name].levels[:4])
        assert enc.encode(images, batchnorm_train=False)["latent"].shape == (1, enc.latent_size, 2, 8, 8)
    assert SpatialEncoder(backbone="resnet50", pretrained=False).latent_size == 64 + 256 + 512 + 1024
    # the backbone's own weight file, found by its torchvision name; the resnet18 keys are the original's
    ref = torchvision.models.resnet34(weights=None)
    torch.save(ref.state_dict(), tmp_path / BACKBONES_2D["resnet34"].weights_file)
    enc = SpatialEncoder(backbone="resnet34", pretrained=True, search_dirs=[tmp_path])
    assert torch.equal(enc.features.layer3[5].conv2.weight, ref.layer3[5].conv2.weight)
    assert sorted(SpatialEncoder(pretrained=False).state_dict()) == sorted(
        "features." + k for k in torchvision.models.resnet18(weights=None).state_dict() if not k.startswith("fc."))
    with pytest.raises(MissingWeightsError, match="resnet50-0676ba61.pth"):
        SpatialEncoder(backbone="resnet50", pretrained=True, search_dirs=[tmp_path])
    with pytest.raises(ConfigError, match="'vgg16' is not one of resnet18, resnet34"):
        SpatialEncoder(backbone="vgg16", pretrained=False)
    # through the config: the static head reads the chosen backbone's channels
    from mononerf.config import load_config
    from mononerf.models.mononerf import MonoNeRF
    from mononerf.quirks import Quirks
    from tests.test_train import tiny_argv

    cfg = load_config(tiny_argv(tmp_path, tmp_path, extra=["model.encoder_2d.type=resnet50"]))
    model = MonoNeRF.from_conf(cfg, Quirks.from_conf(cfg))
    assert model.encoder2d.backbone == "resnet50" and model.mlp_static.d_latent == 64 + 256 + 512 + 1024
    with pytest.raises(ConfigError, match="model.encoder_2d.type"):
        load_config(tiny_argv(tmp_path, tmp_path, extra=["model.encoder_2d.type=vgg16"]))


def test_resnet18_batchnorm_train_differs():
    enc = SpatialEncoder(pretrained=False)
    images = torch.rand(1, 2, 32, 32, 3)
    a = enc.encode(images, batchnorm_train=False)["latent"]
    b = enc.encode(images, batchnorm_train=True)["latent"]
    assert not torch.allclose(a, b, atol=1e-3)


# ------------------------------------------------------------------------------------------- clip preprocessing
def test_preprocess_clip_matches_cv2_resize():
    rng = np.random.default_rng(0)
    frames = (rng.random((1, 2, 27, 48, 3)) * 255).astype(np.float32)  # (B, T, H, W, 3)
    out = preprocess_clip(torch.from_numpy(frames), stretch=True)
    assert out.shape == (1, 3, 2, 48, 27)  # H and W swapped (quirk §8.5)
    mean, std = np.array(CLIP_MEAN, np.float32), np.array(CLIP_STD, np.float32)
    for t in range(2):
        ref = cv2.resize(frames[0, t], (27, 48), interpolation=cv2.INTER_LINEAR)  # dsize = (w, h)
        ref = (ref - mean) / std
        np.testing.assert_allclose(out[0, :, t].permute(1, 2, 0).numpy(), ref, atol=1e-3)


def test_preprocess_clip_without_stretch_only_normalises():
    frames = torch.zeros(1, 1, 5, 7, 3)
    frames[..., 0] = 123.675
    frames[..., 1] = 116.28 + 57.12
    frames[..., 2] = 0
    out = preprocess_clip(frames, stretch=False)
    assert out.shape == (1, 3, 1, 5, 7)
    torch.testing.assert_close(out[0, 0], torch.zeros(1, 5, 7))
    torch.testing.assert_close(out[0, 1], torch.ones(1, 5, 7))
    torch.testing.assert_close(out[0, 2], torch.full((1, 5, 7), -103.53 / 57.375))
    # integer frames are accepted and give the same result
    ints = torch.full((1, 1, 5, 7, 3), 200, dtype=torch.uint8)
    torch.testing.assert_close(preprocess_clip(ints, stretch=False), preprocess_clip(ints.float(), stretch=False))
    assert encoder_clip_size(270, 480, stretch=True) == (480, 270)
    assert encoder_clip_size(270, 480, stretch=False) == (270, 480)
    with pytest.raises(ValueError, match="frames"):
        preprocess_clip(torch.zeros(1, 5, 7, 3), stretch=True)


# ------------------------------------------------------------------------------------------------ native feature volume
@pytest.mark.parametrize("which", ["slowonly", "resnet18"])
def test_native_feature_volume_reads_the_same_values_as_the_upsampled_one(which):
    # run.feature_volume = native keeps coarse layers coarse and resizes a frame when it is read (issue #8):
    # the volume it stands for and every lookup must equal the original's upsampled volume
    from mononerf.models.features import FeatureVolume, sample_frame_features

    torch.manual_seed(0)
    if which == "slowonly":
        full = SpatialTemporalEncoder(num_layers=[0, 1, 2], pretrained=False, freeze=True)
        native = SpatialTemporalEncoder(num_layers=[0, 1, 2], pretrained=False, freeze=True, native_latent=True)
        x = torch.randn(2, 3, 3, 36, 52)
    else:
        full = SpatialEncoder(pretrained=False, freeze=True)
        native = SpatialEncoder(pretrained=False, freeze=True, native_latent=True)
        x = torch.rand(2, 3, 36, 52, 3)
    native.load_state_dict(full.state_dict())
    a = full.encode(x, batchnorm_train=False)
    b = native.encode(x, batchnorm_train=False)
    vol = b["latent"]
    assert isinstance(vol, FeatureVolume) and vol.shape == a["latent"].shape
    assert len(vol.levels) < (3 if which == "slowonly" else 4)  # equal-size layers share one level
    assert vol.nbytes() < 0.75 * a["latent"].numel() * 4
    torch.testing.assert_close(b["latent_scaling"], a["latent_scaling"])
    torch.testing.assert_close(vol.materialize(), a["latent"], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(vol[torch.tensor([1, 0])].materialize(), a["latent"][[1, 0]], atol=1e-6, rtol=1e-6)
    S, T = a["latent"].shape[0], a["latent"].shape[2]
    uv = torch.rand(S, 200, 2) * torch.tensor([60.0, 40.0]) - 4.0  # some outside the image (border padding)
    for f in range(T):
        frame = torch.tensor([f, (f + 1) % T])
        ref = sample_frame_features(a["latent"], frame, uv, (52, 36), a["latent_scaling"])
        got = sample_frame_features(vol, frame, uv, (52, 36), b["latent_scaling"])
        torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-6)


def test_the_tests_init_memo_gives_the_weights_and_generator_state_of_a_real_build():
    # tests/conftest.py hands out copies of the encoders built once per generator state: a copy must equal a real
    # build from that state (every tensor, to the bit, in its own storage), and leave the generator where it would
    import mononerf.models.encoders as encoders

    from tests.conftest import InitMemo

    memo = InitMemo(lambda: torchvision.models.resnet18(weights=None))
    runs = []
    for build in (memo, memo, memo.build):  # a miss, a hit, a real build
        torch.manual_seed(123)
        net = build()
        runs.append((net, torch.rand(4)))
    assert memo.hits == 1
    (first, after0), (copy_, after1), (real, after2) = runs
    assert torch.equal(after0, after2) and torch.equal(after1, after2)
    for a, b, c in zip(first.state_dict().values(), copy_.state_dict().values(), real.state_dict().values()):
        assert torch.equal(a, c) and torch.equal(b, c)
    kept = {net.conv1.weight.data_ptr() for net, _ in memo._cache.values()}
    assert len({first.conv1.weight.data_ptr(), copy_.conv1.weight.data_ptr()} | kept) == 3  # nothing shared
    torch.manual_seed(7)
    assert not torch.equal(memo().conv1.weight, real.conv1.weight)  # another state: another build
    if os.environ.get("MONONERF_TEST_INIT_MEMO", "1") != "0":  # the encoders of every test go through it
        assert isinstance(encoders.ResNet3dSlowOnly, InitMemo)
        assert all(isinstance(spec.build, InitMemo) for spec in BACKBONES_2D.values())
