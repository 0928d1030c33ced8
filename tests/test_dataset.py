"""Multi-scene dataset and the original's ray sampling (method.md §1.4–1.6, §4.2, §5.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mononerf.data.dataset import MultiSceneDataset, resolve_scene_dirs, split_frames
from mononerf.errors import SceneFormatError
from mononerf.geometry.rays import pixel_rays
from tests.scene_factory import write_scene


@pytest.fixture()
def two_scenes(tmp_path):
    write_scene(tmp_path / "A", frames=5, height=10, width=14, seed=1, dynamic_box=(2, 6, 3, 9))
    write_scene(tmp_path / "B", frames=5, height=10, width=14, seed=2, dynamic_box=(4, 8, 1, 6))
    return MultiSceneDataset.from_dirs([tmp_path / "A", tmp_path / "B"])


def _reference_dynamic(static_masks, frames, n_rand, seed):
    """The original's per-scene sampling written out plainly (method.md §5.3 step 2) with the global numpy RNG."""
    np.random.seed(seed)
    out = []
    for b in range(static_masks.shape[0]):
        img_i = np.random.choice(frames)
        mask = static_masks[b, img_i]
        coords_d = np.stack(np.where(mask < 0.5), -1)
        coords_s = np.stack(np.where(mask >= 0.5), -1)
        sel_d = np.random.choice(coords_d.shape[0], size=[min(len(coords_d), n_rand // 2)], replace=False)
        sel_s = np.random.choice(coords_s.shape[0], size=[n_rand // 2], replace=False)
        out.append((img_i, np.concatenate([coords_s[sel_s], coords_d[sel_d]], 0)))
    return out


def test_dynamic_sampling_matches_original_order(two_scenes):
    ds = two_scenes
    frames = np.arange(ds.num_frames)
    static = ds.static_masks.numpy()
    for seed in (0, 42, 7):
        ref = _reference_dynamic(static, frames, 16, seed)
        batch = ds.sample_rays(np.random.RandomState(seed), 16, frames, stage="dynamic")
        assert batch.frame.tolist() == [r[0] for r in ref]
        for b, (_, coords) in enumerate(ref):
            np.testing.assert_array_equal(batch.grid[b, :, 1].numpy(), coords[:, 0])  # y
            np.testing.assert_array_equal(batch.grid[b, :, 0].numpy(), coords[:, 1])  # x


def test_dynamic_sampling_static_first(two_scenes):
    batch = two_scenes.sample_rays(np.random.RandomState(0), 16, np.arange(5), stage="dynamic")
    assert batch.num_static == 8
    assert batch.static_mask.shape == (2, 16, 1)
    assert (batch.static_mask[:, :8] == 1).all() and (batch.static_mask[:, 8:] == 0).all()


def test_static_stage_only_static_pixels(two_scenes):
    batch = two_scenes.sample_rays(np.random.RandomState(3), 20, np.arange(5), stage="static")
    assert batch.num_static == 20 and (batch.static_mask == 1).all()
    # no pixel drawn twice (without replacement)
    for b in range(2):
        xy = {tuple(p) for p in batch.grid[b, :, :2].tolist()}
        assert len(xy) == 20


def test_gathered_values_match_the_frame(two_scenes):
    ds = two_scenes
    batch = ds.sample_rays(np.random.RandomState(5), 12, np.arange(5), stage="dynamic")
    for b in range(2):
        t = int(batch.frame[b])
        assert batch.time[b] == pytest.approx(t / 5 * 2 - 1)
        for r in (0, 7, 11):
            x, y = int(batch.grid[b, r, 0]), int(batch.grid[b, r, 1])
            torch.testing.assert_close(batch.target[b, r], ds.images[b, t, y, x])
            assert batch.invdepth[b, r] == ds.disp[b, t, y, x]
            torch.testing.assert_close(batch.grid[b, r], ds.grids[b, t, y, x])
            # ray through integer pixel (x, y), no half-pixel offset (method.md §1.3)
            c2w = ds.poses[b, t, :3, :4]
            f = ds.focals[b]
            d_cam = torch.tensor([(x - ds.width / 2) / f, -(y - ds.height / 2) / f, -1.0])
            torch.testing.assert_close(batch.rays_d[b, r], c2w[:, :3] @ d_cam, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(batch.rays_o[b, r], c2w[:, 3])


def test_unseen_frames_never_sample_held_out(two_scenes):
    train, held = split_frames(5, training_frames=2)
    assert train.tolist() == [0, 1] and held.tolist() == [2, 3, 4]
    rng = np.random.RandomState(0)
    seen = set()
    for _ in range(50):
        seen.update(two_scenes.sample_rays(rng, 8, train).frame.tolist())
    assert seen == {0, 1}
    assert split_frames(5)[0].tolist() == [0, 1, 2, 3, 4] and split_frames(5)[1].size == 0
    with pytest.raises(ValueError):
        split_frames(5, training_frames=6)


def test_every_nth_frame_held_out():
    train, held = split_frames(10, held_out_every=4)
    assert train.tolist() == [0, 1, 2, 4, 5, 6, 8, 9] and held.tolist() == [3, 7]
    assert split_frames(4, held_out_every=1)[1].size == 0  # 1 (and 0) hold nothing out
    with pytest.raises(ValueError, match="use one"):
        split_frames(10, training_frames=3, held_out_every=4)


def test_few_dynamic_pixels_topped_up_with_static(tmp_path):
    write_scene(tmp_path / "A", frames=3, height=10, width=14, dynamic_box=(2, 4, 3, 5))  # 4 dynamic pixels
    write_scene(tmp_path / "B", frames=3, height=10, width=14, dynamic_box=(2, 8, 2, 10))
    ds = MultiSceneDataset.from_dirs([tmp_path / "A", tmp_path / "B"])
    batch = ds.sample_rays(np.random.RandomState(0), 20, np.arange(3))
    assert batch.rays_o.shape == (2, 20, 3)
    assert int(batch.static_mask[0].sum()) == 16 and int(batch.static_mask[1].sum()) == 10
    assert (batch.static_mask[:, :10] == 1).all()


def test_too_few_static_pixels_is_a_clear_error(two_scenes):
    with pytest.raises(SceneFormatError, match="static pixels"):
        two_scenes.sample_rays(np.random.RandomState(0), 10 * 14, np.arange(5), stage="static")


def test_a_stacked_batch_needs_matching_scenes_and_loading_groups_them(tmp_path):
    from mononerf.data.dataset import SceneGroups, load_scenes, read_scenes

    write_scene(tmp_path / "A", frames=3, height=10, width=14)
    write_scene(tmp_path / "B", frames=3, height=8, width=14)
    write_scene(tmp_path / "C", frames=3, height=10, width=14)
    with pytest.raises(SceneFormatError, match="must match"):
        MultiSceneDataset.from_dirs([tmp_path / "A", tmp_path / "B"])
    groups = load_scenes(read_scenes([tmp_path / "A", tmp_path / "B", tmp_path / "C"]))
    assert isinstance(groups, SceneGroups) and groups.indices == [[0, 2], [1]]
    assert [g.height for g in groups.groups] == [10, 8] and groups.names == ["A", "B", "C"]
    assert (groups.group, groups.local) == ([0, 1, 0], [0, 0, 1])
    assert isinstance(load_scenes(read_scenes([tmp_path / "A", tmp_path / "C"])), MultiSceneDataset)


def test_resolve_scene_dirs(tmp_path):
    for n in ("B", "A"):
        (tmp_path / n).mkdir()
    assert [p.name for p in resolve_scene_dirs(None, datadir=str(tmp_path))] == ["A", "B"]
    assert [p.name for p in resolve_scene_dirs(["ALL"], data_root=str(tmp_path))] == ["A", "B"]
    assert [str(p) for p in resolve_scene_dirs(["data/X", "data/Y"])] == ["data/X", "data/Y"]
    with pytest.raises(SceneFormatError):
        resolve_scene_dirs(["ALL"], data_root=str(tmp_path / "empty"))


def test_pixel_rays_centre_pixel_looks_down_minus_z():
    c2w = torch.eye(4)[:3][None]
    o, d = pixel_rays(torch.tensor([[6.0]]), torch.tensor([[4.0]]), 8, 12, torch.tensor([10.0]), c2w)
    torch.testing.assert_close(d[0, 0], torch.tensor([0.0, 0.0, -1.0]))
    torch.testing.assert_close(o[0, 0], torch.zeros(3))


def test_half_pixel_offset_quirk_off_shifts_rays_and_grids(tmp_path):
    write_scene(tmp_path / "A", frames=3, height=10, width=14, seed=1)
    on = MultiSceneDataset.from_dirs([tmp_path / "A"])
    off = MultiSceneDataset.from_dirs([tmp_path / "A"], pixel_offset=0.5)
    b_on = on.sample_rays(np.random.RandomState(0), 8, np.arange(3))
    b_off = off.sample_rays(np.random.RandomState(0), 8, np.arange(3))
    torch.testing.assert_close(b_off.grid[..., :2], b_on.grid[..., :2] + 0.5)  # same pixels, centre coordinates
    torch.testing.assert_close(b_off.grid[..., 2:], b_on.grid[..., 2:])
    x, y = b_off.grid[0, 0, 0], b_off.grid[0, 0, 1]
    c2w, f = off.poses[0, int(b_off.frame[0]), :3, :4], off.focals[0]
    d_cam = torch.stack([(x - off.width / 2) / f, -(y - off.height / 2) / f, torch.tensor(-1.0)])
    torch.testing.assert_close(b_off.rays_d[0, 0], c2w[:, :3] @ d_cam, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(b_off.rays_d, b_on.rays_d)


def test_scene_formats_are_a_registry(tmp_path, monkeypatch):
    from mononerf.data import dataset

    write_scene(tmp_path / "A", frames=3, height=10, width=14, seed=1)
    with pytest.raises(SceneFormatError, match="unknown scene format 'blender'.*llff"):
        MultiSceneDataset.from_dirs([tmp_path / "A"], scene_format="blender")
    seen = []

    def loader(folder, **kw):
        seen.append(folder)
        return dataset.load_scene(folder, **kw)

    monkeypatch.setitem(dataset.SCENE_FORMATS, "mine", loader)
    d = MultiSceneDataset.from_dirs([tmp_path / "A"], scene_format="mine")
    assert seen == [tmp_path / "A"] and d.names == ["A"]
