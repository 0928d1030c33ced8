"""Scene loader (method.md §1.1–1.2): round trip, pose-processing invariants, and every bad-input error."""

from __future__ import annotations

import shutil

import imageio.v3 as iio
import numpy as np
import pytest

from mononerf.data.cli import check_main
from mononerf.data.scene import load_scene
from mononerf.errors import SceneFormatError
from mononerf.geometry import poses as P
from tests.scene_factory import write_scene


@pytest.fixture()
def scene_dir(tmp_path):
    d = tmp_path / "Toy"
    gt = write_scene(d, frames=4, height=8, width=12, focal=10.0)
    return d, gt


def test_round_trip_shapes_and_values(scene_dir):
    d, gt = scene_dir
    s = load_scene(d)
    assert s.name == "Toy" and s.num_frames == 4 and (s.height, s.width) == (8, 12)
    assert s.images.shape == (4, 8, 12, 3) and s.images.dtype == np.float32
    assert 0.0 <= s.images.min() and s.images.max() <= 1.0
    raw = iio.imread(d / "images_2" / "002.png")
    np.testing.assert_allclose(s.images[2], raw / 255.0, atol=1e-6)
    assert s.disp.shape == (4, 8, 12)
    np.testing.assert_allclose(s.disp[1], np.load(d / "disp" / "001.npy"))
    # motion masks binarised, 1 = dynamic; the trainer's mask is the static one
    assert set(np.unique(s.motion_masks)) == {0.0, 1.0}
    assert s.motion_masks[0, 2:5, 3:8].all() and s.motion_masks[0].sum() == 3 * 5
    np.testing.assert_array_equal(s.static_masks, 1 - s.motion_masks)
    # flows: frame T-1 forward and frame 0 backward are zeros; the others as stored (same size: no rescale)
    assert not s.flow_fwd[-1].any() and not s.flow_fwd_mask[-1].any()
    assert not s.flow_bwd[0].any() and not s.flow_bwd_mask[0].any()
    with np.load(d / "flow" / "001_fwd.npz") as f:
        np.testing.assert_allclose(s.flow_fwd[1], f["flow"])
        np.testing.assert_array_equal(s.flow_fwd_mask[1], f["mask"].astype(np.float32))
    # hwf column: loaded size and focal / factor
    np.testing.assert_allclose(s.poses[:, :, 4], np.broadcast_to([8, 12, 10.0], (4, 3)))
    assert s.render_poses.shape == (60, 3, 5) and len(s.render_focals) == 60


def test_grids_layout(scene_dir):
    s = load_scene(scene_dir[0])
    g = s.grids()
    assert g.shape == (4, 8, 12, 8)
    assert g[0, 3, 5, 0] == 5 and g[0, 3, 5, 1] == 3  # x = column, y = row, integer (no half pixel)
    np.testing.assert_array_equal(g[1, ..., 2:4], s.flow_fwd[1])
    np.testing.assert_array_equal(g[1, ..., 4], s.flow_fwd_mask[1])
    np.testing.assert_array_equal(g[2, ..., 5:7], s.flow_bwd[2])
    np.testing.assert_array_equal(g[2, ..., 7], s.flow_bwd_mask[2])


def test_pose_processing_invariants(scene_dir):
    d, gt = scene_dir
    s = load_scene(d)
    # bounds scaled so the 5th-percentile near bound is 1 / 0.9
    sc = 1.0 / (np.percentile(gt["bds"][:, 0], 5) * 0.9)
    np.testing.assert_allclose(s.bds, gt["bds"] * sc, rtol=1e-5)
    assert s.scale == pytest.approx(sc)
    # recentred: the average camera is the identity with zero centre
    avg = P.poses_avg(s.poses)
    np.testing.assert_allclose(avg[:, :3], np.eye(3), atol=1e-5)
    np.testing.assert_allclose(avg[:, 3], 0.0, atol=1e-5)
    # relative motion between cameras is preserved up to the scale
    def rel(c2w_a, c2w_b):
        a = np.eye(4); a[:3, :4] = c2w_a
        b = np.eye(4); b[:3, :4] = c2w_b
        return np.linalg.inv(a) @ b
    r_gt, r = rel(gt["c2w"][0], gt["c2w"][3]), rel(s.poses[0, :, :4], s.poses[3, :, :4])
    np.testing.assert_allclose(r[:3, :3], r_gt[:3, :3], atol=1e-5)
    np.testing.assert_allclose(r[:3, 3], r_gt[:3, 3] * sc, atol=1e-5)
    # rotations stay orthonormal
    for R in s.poses[:, :, :3]:
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-5)


def test_llff_opengl_round_trip():
    rng = np.random.RandomState(1)
    p = rng.normal(size=(5, 3, 5))
    np.testing.assert_allclose(P.llff_to_opengl(P.opengl_to_llff(p)), p)
    # LLFF column 0 is "down" = -up
    gl = P.llff_to_opengl(p)
    np.testing.assert_allclose(gl[:, :, 1], -p[:, :, 0])
    np.testing.assert_allclose(gl[:, :, 0], p[:, :, 1])


def test_spiral_path_matches_formula():
    c2w = np.concatenate([np.eye(3), np.zeros((3, 1)), np.array([[90.0], [160.0], [48.0]])], 1)
    poses, focals = P.spiral_render_path(c2w, num_views=8)
    assert poses.shape == (8, 3, 5) and focals == [48.0] * 8
    # max_trans = 48 / focal = 1; view 2 of 8: angle pi/2 → x = 1, y = (0 - 1)·0.33; camera moves by -(x, y)
    np.testing.assert_allclose(poses[2, :, 3], [-1.0, 0.33, 0.0], atol=1e-6)
    np.testing.assert_allclose(poses[0, :, 3], 0.0, atol=1e-6)


def test_frame_time():
    assert P.frame_time(0, 12) == -1.0
    assert P.frame_time(11, 12) == pytest.approx(1 - 2 / 12)


def test_flow_resized_with_scaling(tmp_path):
    d = tmp_path / "S"
    write_scene(d, frames=3, height=8, width=12)
    flow = np.ones((16, 24, 2), np.float32) * np.array([2.0, -4.0], np.float32)
    np.savez(d / "flow" / "000_fwd.npz", flow=flow, mask=np.ones((16, 24), bool))
    s = load_scene(d)
    np.testing.assert_allclose(s.flow_fwd[0], np.broadcast_to([1.0, -2.0], (8, 12, 2)))


def test_images_2_made_in_python_when_missing(tmp_path):
    d = tmp_path / "S"
    write_scene(d, frames=3, height=8, width=12)
    shutil.rmtree(d / "images_2")
    s = load_scene(d)
    assert (d / "images_2").is_dir() and len(list((d / "images_2").glob("*.png"))) == 3
    # images/ are 2x2 replicated blocks of images_2, so the area downsample restores them exactly
    np.testing.assert_allclose(s.images[0] * 255, iio.imread(d / "images" / "000.png")[::2, ::2], atol=0.5)


# --------------------------------------------------------------------------------------------- bad input


def _expect(d, *fragments):
    with pytest.raises(SceneFormatError) as err:
        load_scene(d)
    msg = str(err.value)
    for frag in fragments:
        assert frag in msg, msg
    return msg


def test_missing_scene_folder(tmp_path):
    _expect(tmp_path / "nope", "nope", "does not exist")


def test_missing_poses(scene_dir):
    d, _ = scene_dir
    (d / "poses_bounds.npy").unlink()
    _expect(d, "poses_bounds.npy", "missing")


def test_wrong_pose_shape(scene_dir):
    d, _ = scene_dir
    np.save(d / "poses_bounds.npy", np.zeros((4, 15)))
    _expect(d, "poses_bounds.npy", "(T, 17)", "(4, 15)")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_poses(scene_dir, bad):
    d, _ = scene_dir
    arr = np.load(d / "poses_bounds.npy")
    arr[1, 3] = bad
    np.save(d / "poses_bounds.npy", arr)
    _expect(d, "poses_bounds.npy", "NaN or inf")


def test_image_count_mismatch(scene_dir):
    d, _ = scene_dir
    (d / "images_2" / "003.png").unlink()
    _expect(d, "images_2", "3 images", "4 poses")


def test_unreadable_image(scene_dir):
    d, _ = scene_dir
    (d / "images_2" / "001.png").write_bytes(b"not a png")
    _expect(d, "001.png", "not a readable image")


def test_a_stray_non_image_in_the_frames_folder_is_named(scene_dir):
    d, _ = scene_dir
    (d / "images_2" / "notes.png").write_text("my notes, saved with the wrong name")
    _expect(d, "notes.png", "not a readable image")


def test_a_file_where_a_folder_is_expected(scene_dir, tmp_path):
    d, _ = scene_dir
    shutil.rmtree(d / "motion_masks")
    (d / "motion_masks").write_text("")
    _expect(d, "motion_masks", "is a file, not a folder")
    (tmp_path / "scene.txt").write_text("")
    with pytest.raises(SceneFormatError, match="is a file, not a scene folder"):
        load_scene(tmp_path / "scene.txt")


def test_image_size_mismatch(scene_dir):
    d, _ = scene_dir
    iio.imwrite(d / "images_2" / "002.png", np.zeros((9, 12, 3), np.uint8))
    _expect(d, "002.png", "12x9")


def test_missing_images_folders(scene_dir):
    d, _ = scene_dir
    shutil.rmtree(d / "images_2")
    shutil.rmtree(d / "images")
    _expect(d, "images_2", "missing folder")


def test_disp_count_and_shape(scene_dir):
    d, _ = scene_dir
    np.save(d / "disp" / "001.npy", np.zeros((8, 12, 3), np.float32))
    _expect(d, "001.npy", "2 dims", "(8, 12, 3)")
    (d / "disp" / "001.npy").unlink()
    _expect(d, "disp", "3 .npy files but 4 frames")


def test_disp_nan(scene_dir):
    d, _ = scene_dir
    bad = np.ones((8, 12), np.float32)
    bad[0, 0] = np.nan
    np.save(d / "disp" / "000.npy", bad)
    _expect(d, "000.npy", "NaN or inf")


def test_mask_count(scene_dir):
    d, _ = scene_dir
    (d / "motion_masks" / "000.png").unlink()
    _expect(d, "motion_masks", "3 .png files but 4 frames")


def test_missing_motion_masks_folder(scene_dir):
    d, _ = scene_dir
    shutil.rmtree(d / "motion_masks")
    _expect(d, "motion_masks", "missing folder")


def test_flow_missing_file(scene_dir):
    d, _ = scene_dir
    (d / "flow" / "002_bwd.npz").unlink()
    _expect(d, "002_bwd.npz", "missing flow file")


def test_flow_bad_keys_and_shapes(scene_dir):
    d, _ = scene_dir
    np.savez(d / "flow" / "000_fwd.npz", flo=np.zeros((8, 12, 2)), mask=np.ones((8, 12), bool))
    _expect(d, "000_fwd.npz", "'flow' and 'mask'")
    np.savez(d / "flow" / "000_fwd.npz", flow=np.zeros((8, 12, 3)), mask=np.ones((8, 12), bool))
    _expect(d, "000_fwd.npz", "(h, w, 2)")
    np.savez(d / "flow" / "000_fwd.npz", flow=np.zeros((8, 12, 2)), mask=np.ones((8, 11), bool))
    _expect(d, "000_fwd.npz", "does not match")
    (d / "flow" / "000_fwd.npz").write_bytes(b"garbage")
    _expect(d, "000_fwd.npz", "unreadable")


def test_check_cli(scene_dir, tmp_path, capsys):
    d, _ = scene_dir
    assert check_main([str(d), "--rays", "8"]) == 0
    out = capsys.readouterr().out
    assert "OK   Toy (llff): 4 frames 12x8" in out and "dynamic pixels" in out and "valid flow" in out
    assert check_main([str(d), str(tmp_path / "missing")]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.err and "missing" in captured.err
