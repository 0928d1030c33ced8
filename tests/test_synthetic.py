"""Tests of the synthetic dynamic scene generator (mononerf/data/synthetic.py, synthetic_render.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mononerf.data.cli import synthetic_main as main
from mononerf.data.synthetic import generate_scene, parse_size
from mononerf.errors import MonoNeRFError

W, H, N = 160, 96, 6
W2, H2 = W // 2, H // 2


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    out = {}
    for key, preset, seed in (("a", "a", 0), ("a_again", "a", 0), ("b", "b", 0), ("c", "c", 0), ("a_seed1", "a", 1)):
        generate_scene(root / key, preset=preset, frames=N, size=(W, H), seed=seed)
        out[key] = root / key
    return out


def rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img[..., ::-1] if img.ndim == 3 else img


def meta(scene: Path) -> dict:
    return json.loads((scene / "synthetic.json").read_text())


def llff_to_c2w(poses_bounds: np.ndarray) -> np.ndarray:
    """Decode (N, 17) rows as the original loader does (method.md §1.1-1.2).

    LLFF columns [down, right, back] → OpenGL [right, up, back]; returns (N, 3, 4)."""
    p = poses_bounds[:, :15].reshape(-1, 3, 5)
    return np.concatenate([p[:, :, 1:2], -p[:, :, 0:1], p[:, :, 2:4]], axis=2)  # (N, 3, 4)


def project(pts: np.ndarray, c2w: np.ndarray, w: int, h: int, f: float):
    cam = (pts - c2w[:3, 3]) @ c2w[:3, :3]
    depth = -cam[..., 2]
    return w / 2 + f * cam[..., 0] / depth, h / 2 - f * cam[..., 1] / depth, depth


def world_points(disp: np.ndarray, c2w: np.ndarray, f: float) -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(disp.shape[1]), np.arange(disp.shape[0]), indexing="xy")
    dirs = np.stack([(xs - disp.shape[1] / 2) / f, -(ys - disp.shape[0] / 2) / f, -np.ones(xs.shape)], -1)
    return c2w[:3, 3] + (1.0 / disp.astype(np.float64))[..., None] * (dirs @ c2w[:3, :3].T)


def bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    x0 = np.clip(np.floor(x).astype(int), 0, w - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, h - 2)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    return (img[y0, x0] * (1 - fx) * (1 - fy) + img[y0, x0 + 1] * fx * (1 - fy)
            + img[y0 + 1, x0] * (1 - fx) * fy + img[y0 + 1, x0 + 1] * fx * fy)


def ray_box_depth(c2w: np.ndarray, obj2world: np.ndarray, half: np.ndarray, w: int, h: int, f: float) -> np.ndarray:
    """Independent slab test: depth (h, w) of the first hit of each pixel ray with an oriented box (inf = miss)."""
    xs, ys = np.meshgrid(np.arange(w), np.arange(h), indexing="xy")
    d_cam = np.stack([(xs - w / 2) / f, -(ys - h / 2) / f, -np.ones(xs.shape)], -1)
    rot, t = obj2world[:3, :3], obj2world[:3, 3]
    o = (c2w[:3, 3] - t) @ rot
    d = (d_cam @ c2w[:3, :3].T) @ rot
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-half - o) / d, (half - o) / d
    near, far = np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)
    return np.where((near <= far) & (near > 0), near, np.inf)


# ------------------------------------------------------------------------------------------------ files
def test_files_and_shapes(scenes):
    s = scenes["a"]
    pb = np.load(s / "poses_bounds.npy")
    assert pb.shape == (N, 17) and pb.dtype == np.float64
    m = meta(s)
    hwf = pb[:, :15].reshape(N, 3, 5)[:, :, 4]
    np.testing.assert_allclose(hwf, [[H, W, m["focal"]]] * N)
    assert m["focal"] == pytest.approx(0.8 * W)
    assert np.all(pb[:, 15] > 0) and np.all(pb[:, 16] > pb[:, 15])
    for sub, shape in (("images", (H, W, 3)), ("images_2", (H2, W2, 3)), ("motion_masks", (H2, W2))):
        names = sorted(p.name for p in (s / sub).iterdir())
        assert names == [f"{i:03d}.png" for i in range(N)], sub
        for name in names:
            img = rgb(s / sub / name)
            assert img.shape == shape and img.dtype == np.uint8, (sub, name, img.shape)
    for i in range(N):
        disp = np.load(s / "disp" / f"{i:03d}.npy")
        assert disp.shape == (H2, W2) and disp.dtype == np.float32 and np.all(disp > 0)
        # bounds are the true depth range of the frame, so they bracket every half-res depth
        assert pb[i, 15] <= 1 / disp.max() + 1e-6 and 1 / disp.min() <= pb[i, 16] + 1e-6
        assert set(np.unique(rgb(s / "motion_masks" / f"{i:03d}.png"))) <= {0, 255}
    flows = sorted(p.name for p in (s / "flow").iterdir())
    assert flows == sorted([f"{i:03d}_fwd.npz" for i in range(N - 1)] + [f"{i:03d}_bwd.npz" for i in range(1, N)])
    with np.load(s / "flow" / "000_fwd.npz") as z:
        assert set(z.files) == {"flow", "mask"}
        assert z["flow"].shape == (H2, W2, 2) and z["flow"].dtype == np.float32
        assert z["mask"].shape == (H2, W2) and z["mask"].dtype == bool
    gt = sorted(p.relative_to(s / "multiview_GT").as_posix() for p in (s / "multiview_GT").rglob("*.jpg"))
    assert gt == sorted(f"{t:08d}/cam{p:02d}.jpg" for t in range(1, N + 1) for p in range(1, N + 1))
    assert rgb(s / "multiview_GT" / "00000001" / "cam03.jpg").shape == (H, W, 3)
    assert set(m) >= {"preset", "seed", "frames", "size", "focal", "near_far", "c2w", "moving_objects", "primitives"}
    assert m["frames"] == N and m["size"] == [W, H] and np.array(m["c2w"]).shape == (N, 4, 4)
    assert np.array(m["moving_objects"][0]["obj2world"]).shape == (N, 4, 4)


def test_video_holds_the_frames(scenes):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(scenes["a"] / "video.mp4"))
    info = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(H, W, 3) for f in reader]
    assert tuple(info["size"]) == (W, H) and len(frames) == N
    err = np.abs(frames[2].astype(float) - rgb(scenes["a"] / "images" / "002.png")).mean()
    assert err < 12.0, err  # lossy yuv420p, but the same picture


def test_images_2_is_exact_subsample(scenes):
    for i in range(N):
        full = rgb(scenes["a"] / "images" / f"{i:03d}.png")
        np.testing.assert_array_equal(rgb(scenes["a"] / "images_2" / f"{i:03d}.png"), full[::2, ::2])


def test_deterministic_per_preset_and_seed(scenes):
    a, again = scenes["a"], scenes["a_again"]
    files = [p.relative_to(a) for sub in ("images", "images_2", "disp", "flow", "motion_masks")
             for p in sorted((a / sub).iterdir())] + [Path("poses_bounds.npy")]
    for rel in files:
        assert (a / rel).read_bytes() == (again / rel).read_bytes(), rel
    for other in ("b", "c", "a_seed1"):
        diff = np.abs(rgb(a / "images" / "000.png").astype(int) - rgb(scenes[other] / "images" / "000.png")).mean()
        assert diff > 20, (other, diff)
    assert not np.allclose(np.load(a / "poses_bounds.npy"), np.load(scenes["b"] / "poses_bounds.npy"))


# ------------------------------------------------------------------------------------------------ flow
@pytest.mark.parametrize("preset", ["a", "b", "c"])
@pytest.mark.parametrize("direction", ["fwd", "bwd"])
def test_flow_warps_neighbour_onto_frame(scenes, preset, direction):
    s = scenes[preset]
    frames = [rgb(s / "images_2" / f"{i:03d}.png") / 255.0 for i in range(N)]
    errs = []
    for i in range(N):
        j = i + 1 if direction == "fwd" else i - 1
        if not 0 <= j < N:
            continue
        with np.load(s / "flow" / f"{i:03d}_{direction}.npz") as z:
            flow, mask = z["flow"], z["mask"]
        assert 0.5 < mask.mean() < 0.995, mask.mean()
        xs, ys = np.meshgrid(np.arange(W2), np.arange(H2), indexing="xy")
        warped = bilinear(frames[j], xs + flow[..., 0], ys + flow[..., 1])
        errs.append(np.abs(warped - frames[i]).mean(-1)[mask])
        # without the flow the neighbour does not match: the check can fail
        errs_identity = np.abs(frames[j] - frames[i]).mean(-1)[mask]
        assert np.median(errs_identity) > 3 * np.median(errs[-1])
    e = np.concatenate(errs)
    assert np.median(e) < 0.02 and np.percentile(e, 95) < 0.08, (np.median(e), np.percentile(e, 95))


def test_flow_separates_object_from_background(scenes):
    s = scenes["a"]
    for i in range(N - 1):
        with np.load(s / "flow" / f"{i:03d}_fwd.npz") as z:
            flow, mask = z["flow"], z["mask"]
        obj = rgb(s / "motion_masks" / f"{i:03d}.png") > 0
        bg_flow = np.median(flow[~obj & mask], axis=0)
        obj_flow = np.median(flow[obj & mask], axis=0)
        assert np.linalg.norm(obj_flow - bg_flow) > 1.0, (i, obj_flow, bg_flow)
        assert np.linalg.norm(bg_flow) < 2.0  # small hand-held camera motion


def test_projection_of_scene_points_matches_flow(scenes):
    s = scenes["a"]
    m = meta(s)
    c2w = llff_to_c2w(np.load(s / "poses_bounds.npy"))
    f2 = m["focal_half"]
    disp0 = np.load(s / "disp" / "000.npy")
    with np.load(s / "flow" / "000_fwd.npz") as z:
        flow, mask = z["flow"], z["mask"]
    static = mask & (rgb(s / "motion_masks" / "000.png") == 0)
    px, py, _ = project(world_points(disp0, c2w[0], f2), c2w[1], W2, H2, f2)
    xs, ys = np.meshgrid(np.arange(W2), np.arange(H2), indexing="xy")
    np.testing.assert_allclose(np.stack([px - xs, py - ys], -1)[static], flow[static], atol=2e-3)
    # a known point: the centre of the front (+z) face of a static box, from the primitive description
    box = next(p for p in m["primitives"] if p["name"] == "box_right")
    o2w = np.array(m["static_obj2world"]["box_right"])
    centre = o2w[:3, :3] @ np.array([0.0, 0.0, box["size"][2]]) + o2w[:3, 3]
    x0, y0, d0 = project(centre, c2w[0], W2, H2, f2)
    x1, y1, _ = project(centre, c2w[1], W2, H2, f2)
    xi, yi = int(round(x0)), int(round(y0))
    assert 0 <= xi < W2 and 0 <= yi < H2
    assert abs(1 / disp0[yi, xi] - d0) < 0.02 * d0  # visible in frame 0
    np.testing.assert_allclose(flow[yi, xi], [x1 - x0, y1 - y0], atol=0.1)


# ------------------------------------------------------------------------------------------------ geometry
def test_poses_roundtrip_llff_columns(scenes):
    s = scenes["a"]
    c2w = llff_to_c2w(np.load(s / "poses_bounds.npy"))
    np.testing.assert_allclose(c2w, np.array(meta(s)["c2w"])[:, :3, :4], atol=1e-12)
    rot = c2w[:, :, :3]
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (N, 3, 3)), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-9)
    assert np.all(rot[:, 2, 2] > 0.99)  # forward facing: cameras look along -z
    travel = c2w[-1, :, 3] - c2w[0, :, 3]
    assert 0.3 < travel[0] < 0.5 and abs(travel[1]) < 0.1  # mostly sideways


def test_disparity_of_back_plane(scenes):
    s = scenes["a"]
    m = meta(s)
    c2w = np.array(m["c2w"])[0]
    plane = np.array(m["static_obj2world"]["back_plane"])
    normal, point = plane[:3, 2], plane[:3, 3]
    f2 = m["focal_half"]
    xs, ys = np.meshgrid(np.arange(W2), np.arange(H2), indexing="xy")
    d_world = np.stack([(xs - W2 / 2) / f2, -(ys - H2 / 2) / f2, -np.ones(xs.shape)], -1) @ c2w[:3, :3].T
    depth_plane = ((point - c2w[:3, 3]) @ normal) / (d_world @ normal)  # ray parameter = depth (dir z = -1)
    disp = np.load(s / "disp" / "000.npy").astype(np.float64)
    assert np.all(disp >= 1 / depth_plane - 1e-6)  # nothing lies behind the back plane
    on_plane = np.abs(disp * depth_plane - 1) < 1e-5
    assert 0.3 < on_plane.mean() < 0.95, on_plane.mean()


def test_motion_mask_is_object_silhouette(scenes):
    s = scenes["a"]
    m = meta(s)
    obj = m["moving_objects"][0]
    half = np.array(next(p for p in m["primitives"] if p["name"] == obj["name"])["size"])
    masks = []
    for i in range(N):
        mask = rgb(s / "motion_masks" / f"{i:03d}.png") > 0
        depth = ray_box_depth(np.array(m["c2w"])[i], np.array(obj["obj2world"])[i], half, W2, H2, m["focal_half"])
        sil = np.isfinite(depth)
        assert 0.005 < mask.mean() < 0.5
        assert np.mean(mask != sil) < 0.002, np.mean(mask != sil)  # the cube is in front of everything in preset a
        disp = np.load(s / "disp" / f"{i:03d}.npy")
        both = mask & sil
        np.testing.assert_allclose(disp[both], 1 / depth[both], rtol=1e-5)
        masks.append(mask)
    assert np.mean(masks[0] != masks[-1]) > 0.01  # it moves


def test_multiview_gt_diagonal_matches_images(scenes):
    s = scenes["a"]

    def psnr(a, b):
        return 10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2))

    for k in range(1, N + 1):
        img = rgb(s / "images" / f"{k - 1:03d}.png")
        assert psnr(rgb(s / "multiview_GT" / f"{k:08d}" / f"cam{k:02d}.jpg"), img) > 30
        other_cam = rgb(s / "multiview_GT" / f"{k:08d}" / f"cam{(k % N) + 1:02d}.jpg")
        assert psnr(other_cam, img) < 25
    # same camera, other time: only the moving object differs
    same_cam = rgb(s / "multiview_GT" / f"{N:08d}" / "cam01.jpg")
    img0 = rgb(s / "images" / "000.png")
    obj0 = cv2.resize(rgb(s / "motion_masks" / "000.png"), (W, H), interpolation=cv2.INTER_NEAREST) > 0
    assert psnr(same_cam, img0) < 25
    bg = ~obj0 & ~(cv2.resize(rgb(s / "motion_masks" / f"{N - 1:03d}.png"), (W, H),
                              interpolation=cv2.INTER_NEAREST) > 0)
    assert np.abs(same_cam[bg].astype(float) - img0[bg]).mean() < 8


# ------------------------------------------------------------------------------------------------ errors and CLI
@pytest.mark.parametrize("kwargs, words", [
    (dict(size=(161, 96)), "even"),
    (dict(size=(160, 95)), "even"),
    (dict(size=(16, 16)), "too small"),
    (dict(frames=2), "frames"),
    (dict(preset="z"), "preset"),
])
def test_bad_arguments(tmp_path, kwargs, words):
    with pytest.raises(MonoNeRFError, match=words):
        generate_scene(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_refuses_foreign_folder_and_replaces_own(tmp_path):
    user = tmp_path / "real_scene"
    (user / "images").mkdir(parents=True)
    (user / "images" / "keep.png").write_bytes(b"x")
    with pytest.raises(MonoNeRFError, match="synthetic.json"):
        generate_scene(user, size=(64, 48), frames=3)
    assert (user / "images" / "keep.png").read_bytes() == b"x"
    own = tmp_path / "own"
    generate_scene(own, size=(64, 48), frames=5)
    generate_scene(own, size=(64, 48), frames=3, preset="c")
    assert len(list((own / "images").iterdir())) == 3 and len(list((own / "flow").iterdir())) == 4
    assert len(list((own / "multiview_GT").iterdir())) == 3
    assert meta(own)["preset"] == "c" and np.load(own / "poses_bounds.npy").shape == (3, 17)


def test_cli_errors_and_summary(tmp_path, capsys):
    assert parse_size("320x180") == (320, 180)
    with pytest.raises(MonoNeRFError):
        parse_size("320by180")
    assert main(["--out", str(tmp_path / "bad"), "--size", "65x48"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
    assert main(["--out", str(tmp_path / "ok"), "--size", "64x48", "--frames", "3", "--preset", "b"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "ok") in out and "3 frames" in out and "64x48" in out and "32x24" in out
    proc = subprocess.run([sys.executable, "-m", "mononerf.data.synthetic", "--out", str(tmp_path / "x"),
                           "--frames", "2"], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_multiview_masks_are_the_moving_object_of_every_view(scenes):
    s = scenes["a"]
    for k in range(1, N + 1):
        full = cv2.imread(str(s / "multiview_masks" / f"{k:08d}" / f"cam{k:02d}.png"), cv2.IMREAD_UNCHANGED)
        assert full.shape == (H, W) and set(np.unique(full)) <= {0, 255}
        # the diagonal (camera k at time k) is the training frame's motion mask, at full resolution
        half = cv2.imread(str(s / "motion_masks" / f"{k - 1:03d}.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(full[::2, ::2], half)
    # a camera that does not move while time runs: the mask moves with the object
    first = cv2.imread(str(s / "multiview_masks" / f"{1:08d}" / "cam01.png"), cv2.IMREAD_UNCHANGED)
    last = cv2.imread(str(s / "multiview_masks" / f"{N:08d}" / "cam01.png"), cv2.IMREAD_UNCHANGED)
    assert first.any() and last.any() and np.mean(first != last) > 0.01
