"""Preprocessing a video into a scene (mononerf/preprocess, method.md §6.2), checked on the synthetic generator's mp4.

Weight files are written by the tests from randomly initialised models with the real key layouts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mononerf.data.scene import load_scene
from mononerf.data.synthetic import generate_scene
from mononerf.errors import MissingWeightsError, MonoNeRFError
from mononerf.preprocess import flow as FL
from mononerf.preprocess import motion_masks as MM
from mononerf.preprocess.cli import main as preprocess_main
from mononerf.preprocess.frames import extract_frames, frame_step

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """A 5-frame 96x64 synthetic scene with its mp4 and ground truth."""
    root = tmp_path_factory.mktemp("pre") / "syn"
    generate_scene(root, preset="a", frames=5, size=(96, 64), seed=0)
    return root


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def _read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


# ------------------------------------------------------------------------------------------------------------- frames

def test_frame_step_keeps_at_most_100_frames():
    assert [frame_step(n) for n in (1, 100, 101, 250, 1000)] == [1, 1, 2, 3, 10]  # ceil(n / 100)


def test_frames_match_the_source_frames(synth, tmp_path):
    n = extract_frames(synth / "video.mp4", tmp_path / "s", show_progress=False, log=lambda m: None)
    assert n == 5
    names = sorted(p.name for p in (tmp_path / "s" / "images").iterdir())
    assert names == [f"{i:03d}.png" for i in range(5)]
    assert sorted(p.name for p in (tmp_path / "s" / "images_colmap").iterdir()) == [f"{i:03d}.jpg" for i in range(5)]
    for i in range(5):
        got, src = _read(tmp_path / "s" / "images" / f"{i:03d}.png"), _read(synth / "images" / f"{i:03d}.png")
        assert got.shape == src.shape == (64, 96, 3)
        assert _psnr(got, src) > 28  # H.264 of noise textures; measured 31-33 dB
        mask = _read(tmp_path / "s" / "background_mask" / f"{i:03d}.jpg.png")
        assert mask.shape == (64, 96) and (mask == 255).all()  # no Mask R-CNN weights: every pixel is used
        assert _read(tmp_path / "s" / "images_2" / f"{i:03d}.png").shape == (32, 48, 3)
    # every ceil(5/2) = 3rd frame: source frames 0 and 3
    m = extract_frames(synth / "video.mp4", tmp_path / "t", max_frames=2, show_progress=False, log=lambda m: None)
    assert m == 2
    assert _psnr(_read(tmp_path / "t" / "images" / "001.png"), _read(synth / "images" / "003.png")) > 28


def test_bad_video_says_so_and_leaves_the_scene_alone(tmp_path):
    (tmp_path / "scene" / "images").mkdir(parents=True)
    (tmp_path / "scene" / "images" / "keep.png").write_bytes(b"x")
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    assert preprocess_main(["frames", str(tmp_path / "bad.mp4"), "--out", str(tmp_path / "scene")]) == 2
    assert preprocess_main([str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "scene")]) == 2
    assert (tmp_path / "scene" / "images" / "keep.png").exists()


# -------------------------------------------------------------------------------------------------------------- poses

class _FakeImage:
    def __init__(self, name):
        self.name, self.has_pose = name, True


class _FakeRec:
    def __init__(self, names):
        self.images = {i: _FakeImage(n) for i, n in enumerate(names)}


def test_poses_step_reports_how_many_frames_registered(synth, tmp_path, monkeypatch):
    from mononerf.preprocess import camera_motion, poses

    scene = tmp_path / "s"
    shutil.copytree(synth / "images", scene / "images_colmap")
    calls = []
    monkeypatch.setattr(poses, "extract_and_match", lambda scene_dir, model, **kw: calls.append(model))
    monkeypatch.setattr(camera_motion, "check_camera_motion", lambda db, size: calls.append("check"))
    monkeypatch.setattr(poses, "map_cameras", lambda scene_dir, seed, recipe: calls.append(
        (recipe.init_min_tri_angle, recipe.refine_focal, seed)) or _FakeRec(["000.png", "003.png"]))
    with pytest.raises(poses.ReconstructionError, match=r"registered at most 2 of 5 frames with the original's "
                                                         r"settings \(SIMPLE_RADIAL, 1 trial\); 2 of 5 frames with "
                                                         r"video: focal held, 2° initial angle \(SIMPLE_RADIAL, 2 "
                                                         r"trials\); .*at least 90% of the frames are needed"):
        poses.estimate_poses(scene, log=lambda m: None)
    # one extraction per camera model, the motion check once, then the recipes in order, each with its seeds
    assert calls == ["SIMPLE_RADIAL", "check", (4.0, True, 0), (2.0, False, 0), (2.0, False, 1), (1.0, False, 0),
                     (1.0, False, 1), "SIMPLE_PINHOLE", (2.0, False, 0), (2.0, False, 1)]
    calls.clear()
    with pytest.raises(poses.ReconstructionError):
        poses.estimate_poses(scene, camera_model="SIMPLE_PINHOLE", motion_check=False, log=lambda m: None)
    assert calls == ["SIMPLE_PINHOLE", (4.0, True, 0), (2.0, False, 0), (2.0, False, 1), (1.0, False, 0),
                     (1.0, False, 1)]
    assert preprocess_main(["poses", "--out", str(scene)]) == 2
    assert not (scene / "poses_bounds.npy").exists()


class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_colmap_model_converts_to_llff_poses_bounds():
    """A fake pycolmap model (the attributes the conversion reads) built from known OpenGL cameras."""
    from mononerf.data.synthetic import llff_poses_bounds
    from mononerf.preprocess.poses import reconstruction_to_poses_bounds
    from tests.scene_factory import look_c2w

    rng = np.random.RandomState(0)
    c2w_gl = np.stack([np.concatenate([look_c2w([0.3 * i, 0.1, 0.0], rng, 0.2), [[0, 0, 0, 1]]]) for i in range(3)])
    flip = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenGL [right, up, back] → COLMAP [right, down, forward]
    pts = rng.uniform([-2, -2, -9], [2, 2, -3], size=(50, 3))  # in front of every camera (looking along -z)
    points3d = {i + 10: _Obj(xyz=p) for i, p in enumerate(pts)}
    images, depths = {}, []
    for i in (2, 0, 1):  # registration order differs from name order
        w2c = np.linalg.inv(c2w_gl[i] @ flip)
        pose = _Obj(rotation=_Obj(matrix=lambda r=w2c[:3, :3]: r), translation=w2c[:3, 3])
        seen = list(range(10 + 5 * i, 60))
        obs = [_Obj(point3D_id=k, has_point3D=lambda: True) for k in seen]
        obs.append(_Obj(point3D_id=-1, has_point3D=lambda: False))
        images[i] = _Obj(name=f"{i:03d}.jpg", has_pose=True, cam_from_world=lambda p=pose: p, points2D=obs)
    for i in range(3):
        depths.append((pts[5 * i:] - c2w_gl[i, :3, 3]) @ -c2w_gl[i, :3, 2])  # distance along the viewing axis
    rec = _Obj(cameras={1: _Obj(height=54, width=96, params=np.array([80.0, 48, 27, 0.01]))}, images=images,
               points3D=points3d)
    got = reconstruction_to_poses_bounds(rec, ["000.jpg", "001.jpg", "002.jpg"])
    bounds = np.array([np.percentile(d, [5, 95]) for d in depths])
    want = llff_poses_bounds(c2w_gl, 54, 96, 80.0, bounds)
    np.testing.assert_allclose(got, want, atol=1e-9)
    np.testing.assert_allclose(MM.llff_to_colmap_w2c(got)[1], np.linalg.inv(c2w_gl[1] @ flip), atol=1e-9)


def _similarity(src: np.ndarray, dst: np.ndarray):
    """Umeyama: scale s, rotation R, translation t minimising |s R src + t - dst|² over (N, 3) points."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1, 1, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = np.trace(np.diag(sig) @ d) / (a ** 2).sum(1).mean()
    return scale, rot, mu_d - scale * rot @ mu_s


@pytest.fixture(scope="module")
def synth_large(tmp_path_factory):
    """A 960x540 synthetic clip: COLMAP registers every frame at this size (not at 320x180)."""
    root = tmp_path_factory.mktemp("pre_large") / "syn"
    generate_scene(root, preset="a", frames=8, size=(960, 540), seed=0)
    return root


@pytest.mark.slow
def test_colmap_recovers_the_true_camera_path(synth_large, tmp_path):
    from mononerf.preprocess.poses import estimate_poses

    scene = tmp_path / "s"
    extract_frames(synth_large / "video.mp4", scene, show_progress=False, log=lambda m: None)
    res = estimate_poses(scene, log=lambda m: None)
    assert res.registered == res.total == 8
    est, true = np.load(scene / "poses_bounds.npy"), np.load(synth_large / "poses_bounds.npy")
    assert est.shape == (8, 17)
    assert abs(est[0, 14] - true[0, 14]) / true[0, 14] < 0.03  # focal within 3 % (768 px)
    assert np.all(est[:, 15] > 0) and np.all(est[:, 15] < est[:, 16])
    pe, pt = est[:, :15].reshape(-1, 3, 5), true[:, :15].reshape(-1, 3, 5)
    scale, rot, trans = _similarity(pe[:, :, 3], pt[:, :, 3])
    centres = scale * pe[:, :, 3] @ rot.T + trans
    path_len = np.linalg.norm(np.diff(pt[:, :, 3], axis=0), axis=1).sum()
    assert np.abs(centres - pt[:, :, 3]).max() < 0.05 * path_len
    errs = []
    for i in range(8):
        r_est = rot @ pe[i, :, :3]
        cos = np.clip((np.trace(r_est.T @ pt[i, :, :3]) - 1) / 2, -1, 1)
        errs.append(np.degrees(np.arccos(cos)))
    assert max(errs) < 1.0, errs  # degrees


# -------------------------------------------------------------------------------------------------------------- depth

def _expected_midas_keys() -> set[str]:
    """Key names of the original ``MidasNet`` (MiDaS v2.1), listed from its code: ``pretrained.layer1`` is
    Sequential(conv1, bn1, relu, maxpool, layer1) of the WSL ResNeXt-101 (torchvision names), the scratch convs,
    four fusion blocks with two residual units each, and the output head's convs 0, 2, 4."""
    from torchvision.models import resnext101_32x8d

    keys = set()
    for k in resnext101_32x8d(weights=None).state_dict():
        top, rest = k.split(".", 1)
        if top == "conv1":
            keys.add("pretrained.layer1.0." + rest)
        elif top == "bn1":
            keys.add("pretrained.layer1.1." + rest)
        elif top == "layer1":
            keys.add("pretrained.layer1.4." + rest)
        elif top in ("layer2", "layer3", "layer4"):
            keys.add(f"pretrained.{k}")
    keys |= {f"scratch.layer{i}_rn.weight" for i in range(1, 5)}
    keys |= {f"scratch.refinenet{i}.resConfUnit{u}.conv{c}.{p}" for i in range(1, 5) for u in (1, 2) for c in (1, 2)
             for p in ("weight", "bias")}
    keys |= {f"scratch.output_conv.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")}
    return keys


@pytest.fixture(scope="module")
def midas_file(tmp_path_factory):
    from mononerf.preprocess.midas import MIDAS_FILE, MidasV21

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    model = MidasV21()
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
               folder / MIDAS_FILE)  # half precision: 210 MB instead of 420 MB; loading casts to float32
    return folder / MIDAS_FILE


def test_midas_parameter_names_are_the_original_files(midas_file):
    from mononerf.preprocess.midas import load_midas

    state = torch.load(midas_file, weights_only=True)
    assert set(state) == _expected_midas_keys()
    assert tuple(state["scratch.layer4_rn.weight"].shape) == (256, 2048, 3, 3)
    assert tuple(state["scratch.output_conv.4.weight"].shape) == (1, 32, 1, 1)
    model = load_midas(midas_file)
    assert torch.equal(model.state_dict()["scratch.output_conv.0.bias"], state["scratch.output_conv.0.bias"].float())
    bad = dict(state)
    bad.pop("scratch.refinenet4.resConfUnit1.conv1.bias")
    torch.save(bad, midas_file.parent / "bad.pt")
    with pytest.raises(MonoNeRFError, match="missing keys: scratch.refinenet4.resConfUnit1.conv1.bias"):
        load_midas(midas_file.parent / "bad.pt")


def test_midas_input_size_and_missing_weights_message(tmp_path, monkeypatch):
    from mononerf.preprocess.midas import find_midas_weights, net_input_size

    assert net_input_size(480, 270) == (480, 256)  # 270/32 = 8.4 → 8·32
    assert net_input_size(960, 540) == (960, 512)  # 540/32 = 16.9 → 17·32 = 544 > 540 → 16·32
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingWeightsError) as err:
        find_midas_weights()
    msg = str(err.value)
    assert "midas_v21-f6b98070.pt" in msg and str(tmp_path / "weights") in msg and "checkpoints" in msg
    assert "https://github.com/isl-org/MiDaS/releases/download/v2_1/midas_v21-f6b98070.pt" in msg


# --------------------------------------------------------------------------------------------------------------- flow

def _original_raft_state() -> dict[str, torch.Tensor]:
    """A random state dict with the key layout and shapes of the original RAFT (large) ``raft-things.pth``:
    a DataParallel ``module.`` prefix, BasicEncoder fnet (instance norm: no parameters) and cnet (batch norm,
    each strided block's ``norm3`` registered twice, also as ``downsample.1``), BasicUpdateBlock."""
    g = torch.Generator().manual_seed(0)
    shapes: dict[str, tuple] = {}

    def conv(name, cout, cin, kh, kw=None):
        shapes[name + ".weight"], shapes[name + ".bias"] = (cout, cin, kh, kw or kh), (cout,)

    def bn(name, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{p}"] = (c,)
        shapes[name + ".num_batches_tracked"] = ()

    for enc, batch in (("fnet", False), ("cnet", True)):
        conv(f"{enc}.conv1", 64, 3, 7)
        if batch:
            bn(f"{enc}.norm1", 64)
        cin = 64
        for layer, dim in ((1, 64), (2, 96), (3, 128)):
            for blk in range(2):
                pre = f"{enc}.layer{layer}.{blk}"
                conv(pre + ".conv1", dim, cin, 3)
                conv(pre + ".conv2", dim, dim, 3)
                if batch:
                    bn(pre + ".norm1", dim)
                    bn(pre + ".norm2", dim)
                if blk == 0 and layer > 1:
                    conv(pre + ".downsample.0", dim, cin, 1)
                    if batch:
                        bn(pre + ".norm3", dim)
                        bn(pre + ".downsample.1", dim)
                cin = dim
        conv(f"{enc}.conv2", 256, 128, 1)
    u = "update_block"
    conv(f"{u}.encoder.convc1", 256, 324, 1)
    conv(f"{u}.encoder.convc2", 192, 256, 3)
    conv(f"{u}.encoder.convf1", 128, 2, 7)
    conv(f"{u}.encoder.convf2", 64, 128, 3)
    conv(f"{u}.encoder.conv", 126, 256, 3)
    for gate in "zrq":
        conv(f"{u}.gru.conv{gate}1", 128, 384, 1, 5)
        conv(f"{u}.gru.conv{gate}2", 128, 384, 5, 1)
    conv(f"{u}.flow_head.conv1", 256, 128, 3)
    conv(f"{u}.flow_head.conv2", 2, 256, 3)
    conv(f"{u}.mask.0", 256, 128, 3)
    conv(f"{u}.mask.2", 576, 256, 1)
    return {"module." + k: (torch.randn(s, generator=g) if s else torch.tensor(3)) for k, s in shapes.items()}


def test_original_raft_keys_convert_to_torchvision_and_load_strictly(tmp_path):
    from torchvision.models.optical_flow import raft_large

    orig = _original_raft_state()
    assert FL.is_original_raft_state(orig)
    conv = FL.convert_original_raft_state(orig)
    assert not FL.is_original_raft_state(conv)
    assert len(conv) == len(orig) - 2 * 5  # the two norm3 copies (5 tensors each) of cnet's strided blocks dropped
    model = raft_large(weights=None, progress=False)
    assert set(conv) == set(model.state_dict())
    for theirs, ours in [("update_block.gru.convz1.weight", "update_block.recurrent_block.convgru1.convz.weight"),
                         ("update_block.gru.convq2.bias", "update_block.recurrent_block.convgru2.convq.bias"),
                         ("update_block.encoder.convc2.weight", "update_block.motion_encoder.convcorr2.0.weight"),
                         ("update_block.mask.2.bias", "mask_predictor.conv.bias"),
                         ("cnet.norm1.running_var", "context_encoder.convnormrelu.1.running_var"),
                         ("cnet.layer3.0.downsample.1.weight", "context_encoder.layer3.0.downsample.1.weight"),
                         ("fnet.layer2.1.conv2.weight", "feature_encoder.layer2.1.convnormrelu2.0.weight"),
                         ("fnet.conv2.bias", "feature_encoder.conv.bias")]:
        assert conv[ours] is orig["module." + theirs]
    torch.save(orig, tmp_path / FL.ORIGINAL_RAFT_FILE)
    loaded = FL.load_raft(tmp_path / FL.ORIGINAL_RAFT_FILE)
    assert torch.equal(loaded.state_dict()["mask_predictor.convrelu.0.weight"], orig["module.update_block.mask.0.weight"])
    with pytest.raises(MonoNeRFError, match="unknown key 'module.update_block.extra.weight'"):
        FL.convert_original_raft_state({**orig, "module.update_block.extra.weight": torch.zeros(1)})


def test_consistency_masks_known_values():
    h, w = 6, 10
    right = np.zeros((h, w, 2), np.float32)
    right[..., 0] = 2.0
    fwd_ok, bwd_ok = FL.consistency_masks(right, -right)
    # inside, |2 + (-2)| = 0 < 0.5 (2 + 2) + 0.5; the last 2 columns land outside (warped flow 0):
    # |2 + 0| = 2 > 0.5 (2 + 0) + 0.5 = 1.5
    assert fwd_ok[:, :w - 3].all() and not fwd_ok[:, w - 2:].any()
    assert bwd_ok[:, 3:].all() and not bwd_ok[:, :2].any()
    same, _ = FL.consistency_masks(right, right)  # |2 + 2| = 4 > 0.5 (2 + 2) + 0.5
    assert not same.any()


@pytest.fixture(scope="module")
def raft_dir(tmp_path_factory):
    from torchvision.models.optical_flow import raft_large

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("raft")
    torch.save(raft_large(weights=None, progress=False).state_dict(), folder / FL.TORCHVISION_RAFT_FILES[0])
    return folder


def test_raft_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(MissingWeightsError) as err:
        FL.find_raft_weights()
    msg = str(err.value)
    assert "raft-things.pth" in msg and "raft_large_C_T_SKHT_V2-ff5fadd5.pth" in msg
    assert "https://download.pytorch.org/models/raft_large_C_T_V1-22a6c225.pth" in msg
    assert str(tmp_path / "weights") in msg


# ------------------------------------------------------------------------------------------------------- motion masks

def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_epipolar_distance_known_values():
    K = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    rel = np.eye(4)
    rel[:3, 3] = [1.0, 0, 0]  # pure sideways motion: epipolar lines are the image rows
    flow = np.zeros((80, 100, 2))
    flow[..., 0] = -7.0  # along the row: static
    assert MM.epipolar_distance(rel, K, flow).max() < 1e-9
    flow[..., 1] = 3.0  # 3 px off the row
    np.testing.assert_allclose(MM.epipolar_distance(rel, K, flow), 3.0, rtol=1e-5)  # +1e-8 in the norm


@pytest.fixture(scope="module")
def synth_motion(tmp_path_factory):
    root = tmp_path_factory.mktemp("pre_mm") / "syn"
    generate_scene(root, preset="a", frames=6, size=(480, 270), seed=0)
    return root


def test_motion_masks_from_true_flow_overlap_the_true_motion(synth_motion, tmp_path):
    scene = tmp_path / "s"
    shutil.copytree(synth_motion, scene, ignore=shutil.ignore_patterns("multiview*"))
    MM.run_motion_masks(scene, show_progress=False, log=lambda m: None)
    ious = []
    for i in range(6):
        got = _read(scene / "motion_masks" / f"{i:03d}.png") > 0
        true = _read(synth_motion / "motion_masks" / f"{i:03d}.png") > 0  # images_2 size
        assert got.shape == (270, 480)  # written at the size of images/
        got = cv2.resize(got.astype(np.uint8), true.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        # The true flow is zero where a point leaves the frame or is hidden in the neighbour frame: no flow
        # there, so the epipolar test cannot judge those pixels; score the pixels with valid true flow.
        valid = np.ones_like(true)
        for name in (f"{i:03d}_fwd.npz", f"{i:03d}_bwd.npz"):
            if (synth_motion / "flow" / name).exists():
                with np.load(synth_motion / "flow" / name) as d:
                    valid &= d["mask"]
        ious.append(_iou(got & valid, true & valid))
    assert min(ious) > 0.6 and np.mean(ious) > 0.75, ious  # measured 0.66 (frame 0: forward flow only), 0.80-0.86
    assert load_scene(scene).motion_masks.shape == (6, 135, 240)


def test_motion_masks_add_the_movers_mask_rcnn_finds(synth, tmp_path, monkeypatch):
    """The Mask R-CNN branch of the motion masks, with a stand-in network that finds a mover in the left quarter."""
    from mononerf.preprocess import semantic

    scene = tmp_path / "s"
    shutil.copytree(synth, scene, ignore=shutil.ignore_patterns("multiview*", "motion_masks"))
    calls = []

    class StandIn:
        def to(self, device):
            return self

    def object_mask(model, rgb, labels=None, device="cpu"):
        calls.append((rgb.shape, labels))
        mask = np.zeros(rgb.shape[:2], bool)
        mask[:, : rgb.shape[1] // 4] = True
        return mask

    monkeypatch.setattr(semantic, "find_maskrcnn_weights", lambda weights_dir: Path("stand-in.pth"))
    monkeypatch.setattr(semantic, "load_maskrcnn", lambda path: StandIn())
    monkeypatch.setattr(semantic, "object_mask", object_mask)
    assert MM.run_motion_masks(scene, show_progress=False, log=lambda m: None) == 5
    assert calls == [((MM.SEMANTIC_SIZE[1], MM.SEMANTIC_SIZE[0], 3), semantic.MOVER_LABELS)] * 5
    for i in range(5):
        mask = _read(scene / "motion_masks" / f"{i:03d}.png") > 0
        assert mask.shape == (64, 96) and mask[:, :24].all()
    assert not list(scene.glob(".*.tmp"))  # the staging folder is gone


# ------------------------------------------------------------------------------------------------- depth + flow steps

def test_depth_and_flow_steps_write_what_the_loader_accepts(synth, midas_file, raft_dir, tmp_path):
    scene = tmp_path / "s"
    shutil.copytree(synth, scene, ignore=shutil.ignore_patterns("multiview*", "disp", "flow", "motion_masks"))
    weights = str(raft_dir)
    shutil.copy(midas_file, raft_dir / midas_file.name)
    assert preprocess_main(["depth", "--out", str(scene), "--weights-dir", weights, "--device", "cpu"]) == 0
    assert preprocess_main(["flow", "--out", str(scene), "--weights-dir", weights, "--device", "cpu",
                            "--flow-iters", "2"]) == 0
    disp = np.load(scene / "disp" / "000.npy")
    assert disp.shape == (64, 96) and disp.dtype == np.float32 and np.isfinite(disp).all()
    assert _read(scene / "disp_png" / "000.png").dtype == np.uint16
    with np.load(scene / "flow" / "000_fwd.npz") as d:
        assert d["flow"].shape == (64, 96, 2) and d["flow"].dtype == np.float32 and d["mask"].dtype == bool
    names = sorted(p.name for p in (scene / "flow").iterdir())
    assert names == sorted([f"{i:03d}_fwd.npz" for i in range(4)] + [f"{i:03d}_bwd.npz" for i in range(1, 5)])
    assert preprocess_main(["motion-masks", "--out", str(scene), "--weights-dir", weights]) == 0
    s = load_scene(scene)
    assert s.disp.shape == (5, 32, 48) and s.flow_fwd.shape == (5, 32, 48, 2)
    # outputs exist: the step is skipped unless --force
    before = (scene / "disp" / "000.npy").stat().st_mtime_ns
    assert preprocess_main(["depth", "--out", str(scene), "--weights-dir", weights]) == 0
    assert (scene / "disp" / "000.npy").stat().st_mtime_ns == before


# --------------------------------------------------------------------------------------------------- whole command

@pytest.mark.slow
def test_full_command_on_the_synthetic_mp4_gives_a_trainable_scene(synth_large, midas_file, raft_dir, tmp_path):
    from mononerf.config import load_config
    from mononerf.train.trainer import Trainer

    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(midas_file, weights / midas_file.name)
    shutil.copy(raft_dir / FL.TORCHVISION_RAFT_FILES[0], weights / FL.TORCHVISION_RAFT_FILES[0])
    scene = tmp_path / "scene"
    assert preprocess_main([str(synth_large / "video.mp4"), "--out", str(scene), "--weights-dir", str(weights),
                            "--device", "cpu", "--half", "--flow-iters", "2", "--epi-threshold", "1e9"]) == 0
    s = load_scene(scene)
    assert s.num_frames == 8 and (s.height, s.width) == (270, 480)
    # Random RAFT weights give random flow, which the epipolar test flags everywhere (even zero flow is not
    # static for a rotating camera); the huge threshold keeps static pixels for the trainer to sample. The mask
    # algorithm itself is checked against the true flow above.
    assert s.motion_masks.max() == 0 and s.flow_fwd_mask[:-1].mean() > 0
    argv = ["-c", str(ROOT / "mononerf_conf/exp/synthetic/multiscene.conf"), "--device", "cpu",
            "--set", f"info.basedir={tmp_path}/logs/", "--set", f'info.dataset_file_lists=["{scene}"]',
            "--set", "train.N_static_iters=1", "--set", "train.N_iters=1", "--set", "info.N_rand=32",
            "--set", "train.N_samples=8", "--set", "model.encoder.num_layers=[0, 1]",
            "--set", "train.i_img=0", "--set", "train.i_weights=0", "--set", "train.i_testset=0",
            "--set", "train.i_video=0", "--set", "train.i_testset_all=0"]
    history = Trainer(load_config(argv), progress=False).fit()
    assert any(stage == "dynamic" and np.isfinite(loss) for stage, _, loss in history)


def test_your_own_scene_launcher_points_to_the_preprocess_command(tmp_path):
    import os
    import subprocess

    proc = subprocess.run(["bash", str(ROOT / "your_own_scene.sh"), "0"], capture_output=True, text=True,
                          env=dict(os.environ, SCENE=str(tmp_path / "mine")), cwd=ROOT)
    assert proc.returncode == 2
    assert f"scene {tmp_path / 'mine'} not found" in proc.stderr
    assert f"-m mononerf.preprocess /path/to/video.mp4 --out {tmp_path / 'mine'}" in proc.stderr


def test_object_masks_keep_confident_detections_of_the_asked_labels():
    from mononerf.preprocess import semantic

    def masks(*boxes):
        m = torch.zeros(len(boxes), 1, 8, 10)
        for k, (y0, y1, x0, x1) in enumerate(boxes):
            m[k, 0, y0:y1, x0:x1] = 0.9
        return m

    pred = {"masks": masks((0, 2, 0, 2), (4, 6, 4, 6), (6, 8, 8, 10)), "scores": torch.tensor([0.9, 0.4, 0.8]),
            "labels": torch.tensor([1, 1, 18])}
    fake = lambda images: [pred]  # noqa: E731  (what torchvision's Mask R-CNN returns in eval mode)
    rgb = np.zeros((8, 10, 3), np.uint8)
    person = semantic.object_mask(fake, rgb)  # only the first: the second scores 0.4 <= 0.5, the third is a dog
    assert person.sum() == 4 and person[:2, :2].all()
    movers = semantic.object_mask(fake, rgb, labels=semantic.MOVER_LABELS)
    assert movers.sum() == 8 and movers[6:, 8:].all()


@pytest.fixture(scope="module")
def maskrcnn_dir(tmp_path_factory):
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    from mononerf.preprocess import semantic

    torch.manual_seed(0)
    state = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, progress=False).state_dict()
    folder = tmp_path_factory.mktemp("maskrcnn")
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, folder / semantic.MASKRCNN_FILE)
    return folder


def test_maskrcnn_file_loads_strictly(maskrcnn_dir):
    from mononerf.preprocess import semantic

    path = semantic.find_maskrcnn_weights(maskrcnn_dir)
    assert path == maskrcnn_dir / semantic.MASKRCNN_FILE
    state = torch.load(path, weights_only=True)
    model = semantic.load_maskrcnn(path)
    key = "roi_heads.mask_predictor.mask_fcn_logits.bias"
    assert torch.equal(model.state_dict()[key], state[key].float())
    assert "notice: maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth not found" in semantic.missing_notice(None)


@pytest.mark.slow
def test_frames_use_the_maskrcnn_file_when_present(synth, maskrcnn_dir, tmp_path):
    logs = []  # random weights detect garbage at 800 px: ~80 s on 2 CPU cores
    extract_frames(synth / "video.mp4", tmp_path / "s", max_frames=2, weights_dir=maskrcnn_dir,
                   show_progress=False, log=logs.append)
    assert logs == []  # no "not found" notice: the masks came from the network
    assert _read(tmp_path / "s" / "background_mask" / "000.jpg.png").shape == (64, 96)
