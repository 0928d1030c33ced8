"""Scene editing (compose, remove the moving part, retime) and the visualisation videos of the render command."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mononerf.geometry.cameras import Pinhole
from mononerf.edit import fields
from mononerf.edit.edits import EditSpec, edit_frames
from mononerf.edit.paths import camera_path, interpolate_pose, playback_ticks
from mononerf.errors import MonoNeRFError
from mononerf.eval import visuals
from mononerf.geometry.poses import frame_time
from mononerf.geometry.rays import world_to_ndc
from mononerf.render.composite import composite_blended
from mononerf.render.renderer import render_rays_dynamic

# ------------------------------------------------------------------------------------------- playback and cameras


def test_playback_ticks():
    assert playback_ticks(3, 0.5) == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert playback_ticks(12, 1.0) == list(range(12))
    assert len(playback_ticks(12, 0.25)) == 4 * 11 + 1  # three in-between times per interval
    assert playback_ticks(5, 2.0) == [0.0, 2.0, 4.0]
    assert playback_ticks(4, 0.1)[-1] == pytest.approx(3.0)  # float steps still reach the last frame
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(MonoNeRFError, match="speed"):
            playback_ticks(5, bad)


def _rot_z(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def test_interpolate_pose():
    poses = torch.stack([torch.cat([_rot_z(0.0), torch.tensor([[0.0], [0.0], [0.0]], dtype=torch.float64)], 1),
                         torch.cat([_rot_z(0.4), torch.tensor([[1.0], [2.0], [0.0]], dtype=torch.float64)], 1)])
    assert torch.equal(interpolate_pose(poses, 1.0), poses[1])
    assert torch.equal(interpolate_pose(poses, 7.0), poses[1])  # clamped to the last frame
    mid = interpolate_pose(poses, 0.5)
    torch.testing.assert_close(mid[:, 3], torch.tensor([0.5, 1.0, 0.0], dtype=torch.float64))
    # the linear blend of two rotations about z by 0 and 0.4 projects onto the rotation by 0.2
    torch.testing.assert_close(mid[:, :3], _rot_z(0.2), atol=1e-12, rtol=0)
    torch.testing.assert_close(mid[:, :3] @ mid[:, :3].T, torch.eye(3, dtype=torch.float64))


def test_camera_path_modes():
    poses = torch.randn(4, 3, 5)
    spiral = torch.randn(3, 3, 5)
    assert torch.equal(camera_path(poses, spiral, [0, 1, 2], "track")[2], poses[2, :, :4])
    assert all(torch.equal(c, poses[3, :, :4]) for c in camera_path(poses, spiral, [0, 0.5], "fixed", view=3))
    assert torch.equal(camera_path(poses, spiral, [0, 1, 2, 3], "spiral")[3], spiral[0, :, :4])  # cycles
    with pytest.raises(MonoNeRFError, match="--view 4"):
        camera_path(poses, spiral, [0], "fixed", view=4)


# ------------------------------------------------------------------------------------------- compositing


def test_empty_dynamic_part_gives_exactly_the_static_field():
    g = torch.Generator().manual_seed(0)
    raw_s = torch.randn(2, 5, 8, 5, generator=g, dtype=torch.float64) * 3
    z = torch.linspace(0, 1, 8, dtype=torch.float64).expand(2, 5, 8)
    rays_d = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    raw_d = fields.empty_dynamic_raw(raw_s)
    assert raw_d.shape == (2, 5, 8, 11) and not raw_d.any()
    out = composite_blended(raw_s[..., :4], raw_d[..., :4], raw_d[..., 10], z, rays_d, 0.0)
    # alpha_d = 0 and b = 0: T_full = T_s, so C_full = C_s (to round-off) and nothing is dynamic
    torch.testing.assert_close(out["rgb_map_full"], out["rgb_map_s"], rtol=0, atol=1e-12)
    torch.testing.assert_close(out["depth_map_full"], out["depth_map_s"], rtol=0, atol=1e-12)
    assert float(out["dynamicness_map"].abs().max()) == 0.0


def _plane_rays(xs: torch.Tensor):
    """One scene of rays at x = xs, parallel to +z, sampled over z in [0, 1] (an NDC-like box)."""
    r = xs.shape[0]
    origins = torch.stack([xs, torch.zeros(r), torch.zeros(r)], -1)[None]
    dirs = torch.tensor([0.0, 0.0, 1.0]).expand(1, r, 3)
    return origins, dirs.clone(), dirs.clone()


def _static_plane(pts_ref, viewdirs):
    """A grey-blue wall at z in [0.7, 0.8] (density 50), colour logits varying with x; static blending 0."""
    x, z = pts_ref[..., 0], pts_ref[..., 2]
    wall = ((z > 0.7) & (z < 0.8)).float()
    rgb = torch.stack([x, torch.zeros_like(x), torch.full_like(x, 5.0)], -1)  # blue: sigmoid(5) ≈ 0.99
    return torch.cat([rgb, (50.0 * wall)[..., None], torch.zeros_like(x)[..., None]], -1)


def _dynamic_blob(x_lo: float, x_hi: float, colour: tuple[float, float, float], follow_time: bool = False):
    """A dynamic blob at z in [0.3, 0.4], x in [x_lo, x_hi) (shifted by the time channel when ``follow_time``):
    density 50 and blending 1 inside, density 0 and blending 0 outside."""

    def fn(pts_ref, viewdirs):
        x, z = pts_ref[..., 0], pts_ref[..., 2]
        shift = pts_ref[..., 3] if follow_time else 0.0
        inside = ((z > 0.3) & (z < 0.4) & (x >= x_lo + shift) & (x < x_hi + shift)).float()
        rgb = torch.tensor(colour).expand(x.shape + (3,)) * 10.0 - 5.0  # logits: sigmoid ~ 0 / 1
        pos = pts_ref[..., :3]
        return torch.cat([rgb, (50.0 * inside)[..., None], pos, pos, inside[..., None]], -1)

    return fn


def _render(joint_fn, xs, t=0.0):
    return render_rays_dynamic(_plane_rays(xs), 0.0, 1.0, torch.tensor([t]), n_samples=64, num_frames=4,
                               joint_fn=joint_fn, dynamic_fn=None, inference=True, neighbour_passes=False)


def test_edits_change_only_the_dynamic_region():
    xs = torch.linspace(-1.0, 1.0, 41)
    dyn_a = _dynamic_blob(-1.0, -0.2, (1.0, 0.0, 0.0))  # scene A: a red object on the left
    dyn_b = _dynamic_blob(0.5, 1.1, (0.0, 1.0, 0.0))  # scene B: a green object on the right
    full = _render(fields.edited_joint_fn(_static_plane, dyn_a), xs)["rgb_map_full"][0]
    removed = _render(fields.edited_joint_fn(_static_plane, None), xs)
    composed = _render(fields.edited_joint_fn(_static_plane, dyn_b), xs)["rgb_map_full"][0]
    static_only = removed["rgb_map_s"][0]
    removed = removed["rgb_map_full"][0]
    in_a, in_b = xs < -0.2, xs >= 0.5
    # remove-dynamic: the static field everywhere; equal to the full render outside A's object, not inside it
    torch.testing.assert_close(removed, static_only, rtol=0, atol=1e-6)
    torch.testing.assert_close(removed[~in_a], full[~in_a], rtol=0, atol=1e-6)
    assert (removed[in_a] - full[in_a]).abs().amax(-1).min() > 0.5
    assert (full[in_a, 0] > 0.9).all() and (removed[in_a, 2] > 0.9).all()  # red object gone, the wall behind it
    # compose (static of A, dynamic of B): A's static pixels wherever B's object is not, B's object where it is
    torch.testing.assert_close(composed[~in_b], static_only[~in_b], rtol=0, atol=1e-6)
    assert (composed[in_b, 1] > 0.9).all() and (composed[in_b, 2] < 0.1).all()


def test_frozen_dynamic_part_uses_its_own_time():
    xs = torch.linspace(-1.0, 1.0, 41)
    moving = _dynamic_blob(-0.2, 0.2, (1.0, 0.0, 0.0), follow_time=True)  # the object sits at x ≈ t
    at_t = _render(fields.edited_joint_fn(_static_plane, moving), xs, t=0.5)["dynamicness_map"][0]
    def frozen_fn(pts_ref, viewdirs):  # what dynamic_field(..., time) does around the model's query
        return moving(fields.with_time(pts_ref, torch.tensor([-0.5])), viewdirs)

    frozen = _render(fields.edited_joint_fn(_static_plane, frozen_fn), xs, t=0.5)["dynamicness_map"][0]
    assert xs[at_t > 0.5].mean() == pytest.approx(0.5, abs=0.06)
    assert xs[frozen > 0.5].mean() == pytest.approx(-0.5, abs=0.06)  # frozen at t = -0.5 while rendering t = 0.5


def test_with_time_and_select_scenes_shapes():
    pts = torch.randn(2, 3, 4, 4)
    out = fields.with_time(pts, torch.tensor([0.25, -1.0]))
    assert torch.equal(out[..., :3], pts[..., :3]) and (out[0, ..., 3] == 0.25).all() and (out[1, ..., 3] == -1).all()
    with pytest.raises(ValueError):
        fields.with_time(pts, torch.tensor([0.0]))


# ------------------------------------------------------------------------------------------- visualisations


def test_disparity_and_video_frames():
    depth = torch.tensor([0.0, 0.5, 0.75, 1.0])
    # NDC ray depth t reaches world depth n / (1 - t): disparity (1 - t) / n
    torch.testing.assert_close(visuals.disparity(depth), torch.tensor([1.0, 0.5, 0.25, 0.0]))
    torch.testing.assert_close(visuals.disparity(torch.tensor([2.0, 4.0]), ndc=False), torch.tensor([0.5, 0.25]))
    ramp = [np.tile(np.linspace(0, 1, 8, dtype=np.float32), (4, 1)) * s for s in (1.0, 0.5)]
    frames = visuals.video_frames("depth", ramp)
    assert frames[0].shape == (4, 8, 3) and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0][:, 0], frames[0][:, -1])  # near and far get different colours
    flat = visuals.video_frames("depth", [np.full((4, 8), 0.3, np.float32)])  # a constant map does not crash
    assert flat[0].shape == (4, 8, 3)
    blend = visuals.video_frames("blend", [np.array([[0.0, 1.0]], np.float32)])[0]
    assert blend[0, 0].tolist() == [0, 0, 0] and blend[0, 1].tolist() == [255, 255, 255]
    flows = visuals.video_frames("flow", [np.zeros((2, 2, 2), np.float32), np.full((2, 2, 2), 3.0, np.float32)])
    assert (flows[0] == 255).all() and flows[1].min() == 0  # zero flow white; the largest at the wheel's rim
    sf = np.array([[[2.0, -1.0, 0.0], [1.0, -4.0, 0.0]]], np.float32)  # (1, 2, 3): one frame of 1 x 2 pixels
    colours = visuals.norm_sf(sf)  # the original's norm_sf: sign-wise scales, zero at 0.5
    assert np.allclose(colours[0, 0], [1.0, 0.5 - 0.25 / 2, 0.5]) and np.allclose(colours[0, 1], [0.75, 0.0, 0.5])
    shown = visuals.video_frames("sceneflow", [sf, np.zeros_like(sf)])  # normalised over the whole video
    assert shown[0].shape == (1, 2, 3) and shown[0].dtype == np.uint8
    assert shown[0][0, 0].tolist() == [255, 96, 128] and len(set(shown[1].reshape(-1).tolist())) == 1
    assert visuals.parse_outputs("rgb, depth,rgb") == ("rgb", "depth")
    with pytest.raises(ValueError, match="normals"):
        visuals.parse_outputs("rgb,normals")


def test_induced_flow_map_known_motion():
    """Points on each pixel's own ray give zero flow from the same camera; moving the camera by dx along x moves a
    point at depth z by -f·dx/z pixels."""
    H, W, f, depth, dx = 6, 8, 10.0, 4.0, 0.2
    c2w = torch.cat([torch.eye(3), torch.zeros(3, 1)], 1)[None].double()
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    pts_world = torch.stack([(xs - W / 2) / f * depth, -(ys - H / 2) / f * depth, torch.full_like(xs, -depth)], -1)
    pts_ndc = world_to_ndc(pts_world[None], H, W, f)
    focal = torch.tensor([f], dtype=torch.float64)
    still = visuals.induced_flow_map(pts_ndc, c2w, Pinhole.centred(H, W, focal))
    assert still.shape == (1, H, W, 2)
    torch.testing.assert_close(still, torch.zeros_like(still), rtol=0, atol=1e-9)
    moved = c2w.clone()
    moved[0, 0, 3] = dx
    flow = visuals.induced_flow_map(pts_ndc, moved, Pinhole.centred(H, W, focal))
    torch.testing.assert_close(flow[..., 0], torch.full((1, H, W), -f * dx / depth, dtype=torch.float64))
    torch.testing.assert_close(flow[..., 1], torch.zeros(1, H, W, dtype=torch.float64), rtol=0, atol=1e-9)


# ------------------------------------------------------------------------------------------- a tiny trained run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two synthetic scenes of 5 frames at 24x16 (training size), one static and two dynamic steps."""
    from mononerf.config import load_config
    from mononerf.data.synthetic import generate_scene
    from mononerf.train.trainer import Trainer
    from tests.test_train import tiny_argv

    root = tmp_path_factory.mktemp("edit")
    for p in "ab":
        generate_scene(root / f"syn_{p}", preset=p, frames=5, size=(48, 32), seed=0)
    trainer = Trainer(load_config(tiny_argv(root, root / "runs", names=("a", "b"), extra=[
        "train.N_static_iters=1", "train.N_iters=2", "train.i_weights=1"])), progress=False)
    trainer.fit()
    trainer.encode()
    trainer.model.eval()
    return trainer


def _plain(trainer, c2w, t, downscale=2):
    d = trainer.data
    with torch.inference_mode():
        return trainer.renderer.render_views(c2w, t, d.camera.downscaled(downscale), dynamic=True)


def test_static_field_is_the_joint_pass_static_output(tiny_run):
    feats = tiny_run.renderer.features
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(2, 6, 3, 4, generator=g) * torch.tensor([1.6, 1.6, 1.0, 1.6]) - torch.tensor([0.8, 0.8, 0, 0.8])
    pts[..., 3] = pts[0, 0, 0, 3]  # one time per scene as the renderer does
    pts[1, ..., 3] = -0.2
    viewdirs = torch.nn.functional.normalize(torch.randn(2, 6, 3, generator=g), dim=-1)
    with torch.inference_mode():
        raw_s, _ = tiny_run.model.query_joint(pts, viewdirs, feats)
        alone = fields.static_field(tiny_run.model, feats)(pts, viewdirs)
    torch.testing.assert_close(alone, raw_s, rtol=0, atol=0)


def test_edits_of_a_trained_run_against_plain_renders(tiny_run):
    """Renders at half the training size (12x8) to stay quick."""
    d = tiny_run.data
    k, n = 2, d.num_frames
    plain = _plain(tiny_run, d.poses[:, k, :, :4], torch.full((2,), frame_time(k, n)))
    same = edit_frames(tiny_run, downscale=2, spec=EditSpec("compose", 0, 0))  # A with A = the plain render
    assert len(same) == n and same[0]["rgb_map_full"].shape == (d.height // 2, d.width // 2, 3)
    torch.testing.assert_close(same[k]["rgb_map_full"], plain["rgb_map_full"][0], rtol=0, atol=1e-5)
    removed = edit_frames(tiny_run, downscale=2, spec=EditSpec("remove-dynamic", 1, None))
    torch.testing.assert_close(removed[k]["rgb_map_full"], plain["rgb_map_s"][1], rtol=0, atol=1e-5)
    assert float(removed[k]["dynamicness_map"].abs().max()) == 0.0
    composed = edit_frames(tiny_run, downscale=2, spec=EditSpec("compose", 0, 1))
    # the static part stays scene A's; the dynamic part changes (B's video features)
    torch.testing.assert_close(composed[k]["rgb_map_s"], plain["rgb_map_s"][0], rtol=0, atol=1e-5)
    assert (composed[k]["rgb_map_d"] - plain["rgb_map_d"][0]).abs().max() > 1e-4
    slow = edit_frames(tiny_run, downscale=2, spec=EditSpec("retime", 0, 0, speed=0.5))
    assert len(slow) == 2 * (n - 1) + 1
    torch.testing.assert_close(slow[2 * k]["rgb_map_full"], plain["rgb_map_full"][0], rtol=0, atol=1e-5)
    frozen = edit_frames(tiny_run, downscale=2, spec=EditSpec("retime", 0, 0, freeze=float(k)))
    torch.testing.assert_close(frozen[k]["rgb_map_full"], plain["rgb_map_full"][0], rtol=0, atol=1e-5)
    # other frames: static part at its own time, dynamic part still at frame k
    assert (frozen[0]["rgb_map_full"] - same[0]["rgb_map_full"]).abs().max() > 1e-5
    with pytest.raises(MonoNeRFError, match="--freeze 7"):
        edit_frames(tiny_run, downscale=2, spec=EditSpec("retime", 0, 0, freeze=7.0))


def _video(path: Path):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]
    return frames, (w, h)


def test_edit_cli_writes_one_video_per_command(tiny_run, tmp_path, capsys):
    from mononerf.edit.cli import main

    run, n = str(tiny_run.run_dir), tiny_run.data.num_frames
    w, h = tiny_run.data.width, tiny_run.data.height
    assert main([run, "compose", "--static-scene", "syn_a", "--dynamic-scene", "1", "--device", "cpu"]) == 0
    (out,) = (tiny_run.run_dir / "edits").glob("compose_syn_a+syn_b_track_*.mp4")
    assert str(out) in capsys.readouterr().out
    frames, size = _video(out)
    assert len(frames) == n and size == (w, h)
    assert main([run, "retime", "--scene", "0", "--speed", "0.5", "--downscale", "2", "--n-samples", "4",
                 "--device", "cpu", "--out", str(tmp_path / "slow.mp4")]) == 0
    frames, size = _video(tmp_path / "slow.mp4")
    assert len(frames) == 2 * (n - 1) + 1 and size == (w // 2, h // 2)
    assert main([run, "retime", "--scene", "0", "--freeze", "9", "--device", "cpu"]) == 2
    assert "--freeze 9 is not a time" in capsys.readouterr().err


def test_edit_command_lines_map_to_edits():
    from mononerf.edit.cli import build_parser, spec_from_args

    names = ["syn_a", "syn_b"]

    def spec(*argv):
        return spec_from_args(build_parser().parse_args(["RUN", *argv]), names)

    assert spec("compose", "--static-scene", "syn_b", "--dynamic-scene", "0") == EditSpec("compose", 1, 0)
    assert spec("remove-dynamic", "--scene", "1", "--camera", "spiral") == EditSpec("remove-dynamic", 1, None,
                                                                                     camera="spiral")
    assert spec("retime", "--scene", "syn_a", "--speed", "0.25") == EditSpec("retime", 0, 0, speed=0.25)
    frozen = spec("retime", "--scene", "syn_a", "--freeze", "1.5", "--camera", "fixed", "--view", "3")
    assert frozen == EditSpec("retime", 0, 0, freeze=1.5, camera="fixed", view=3)
    assert frozen.slug(names) == "retime_syn_a_freeze1.5"
    with pytest.raises(SystemExit):  # --speed and --freeze exclude each other
        build_parser().parse_args(["RUN", "retime", "--scene", "0", "--speed", "2", "--freeze", "1"])
    with pytest.raises(MonoNeRFError, match="0: syn_a, 1: syn_b"):
        spec("remove-dynamic", "--scene", "5")


def test_render_cli_visualisation_videos(tiny_run, tmp_path):
    from mononerf.eval.cli import video_main as main

    run, n = str(tiny_run.run_dir), tiny_run.data.num_frames
    w, h = tiny_run.data.width, tiny_run.data.height
    assert main([run, "--mode", "testset", "--outputs", "rgb,depth,blend,flow,sceneflow", "--device", "cpu",
                 "--out", str(tmp_path / "vis")]) == 0
    for name in ("rgb", "depth", "blend", "flow", "sceneflow"):
        for b in range(2):
            frames, size = _video(tmp_path / "vis" / f"{name}_{b:02d}.mp4")
            assert len(frames) == n and size == (w, h), name
    depth = np.stack(_video(tmp_path / "vis" / "depth_00.mp4")[0]).astype(np.float32)
    assert depth.std(axis=(1, 2, 3)).min() > 1.0  # every frame has structure, not one flat colour
    with pytest.raises(SystemExit):
        main([run, "--outputs", "rgb,normals"])


def test_short_small_spiral_video(tiny_run, tmp_path):
    from mononerf.eval.video import render_mode

    n, w, h = tiny_run.data.num_frames, tiny_run.data.width, tiny_run.data.height
    with torch.inference_mode():
        render_mode(tiny_run, 2, "spiral", tmp_path / "sp", progress=False, outputs=("depth",), downscale=2, repeat=1)
    frames, size = _video(tmp_path / "sp" / "depth_01.mp4")
    assert len(frames) == n + (n - 2) and size == (w // 2, h // 2)  # frames 0..4 then 3..1, once each


def test_spiral_and_fixed_time_take_a_frame_count(tiny_run, tmp_path, monkeypatch):
    from mononerf.eval import renders
    from mononerf.eval.video import render_mode

    seen = []
    real = renders.render_outputs

    def spy(trainer, c2w, times, outputs=("rgb",), downscale=1):
        seen.append((c2w[0].clone(), float(times[0])))
        return real(trainer, c2w, times, outputs, downscale)

    monkeypatch.setattr(renders, "render_outputs", spy)
    d = tiny_run.data
    n, views = d.num_frames, d.render_poses.shape[1]
    with torch.inference_mode():
        render_mode(tiny_run, 2, "spiral", tmp_path / "sp", progress=False, downscale=4, frames=5)
        assert len(_video(tmp_path / "sp" / "rgb_00.mp4")[0]) == 5 and len(seen) == 5
        # the forward-and-back schedule 0..n-1..1 sampled at 5 points, the cameras once round the spiral
        sched = renders.novel_view_time_schedule(n, 1)
        assert [t for _, t in seen] == pytest.approx([frame_time(sched[i], n) for i in renders.spread(len(sched), 5)])
        assert torch.equal(seen[1][0], d.render_poses[0, views // 5, :, :4])
        seen.clear()
        render_mode(tiny_run, 2, "fixed-time", tmp_path / "ft", progress=False, downscale=4, frames=3, time=1)
        assert len(_video(tmp_path / "ft" / "rgb_00.mp4")[0]) == 3
        assert [t for _, t in seen] == pytest.approx([frame_time(1, n)] * 3)
        assert len({tuple(c.flatten().tolist()) for c, _ in seen}) == 3
    assert renders.spread(60, 4) == [0, 15, 30, 45] and renders.spread(3, 5) == [0, 1, 2, 0, 1]
    with pytest.raises(MonoNeRFError, match="--frames 0"):
        renders.spread(10, 0)


def test_render_work_scales_with_the_rays(tiny_run, monkeypatch):
    """The work of a video's frames at one time: each feature map is resized and projected once for all of them (not
    once per frame or per chunk of rays), so a 4x smaller frame does ~1/4 of the matrix work (<= 1/3 asserted)."""
    from torch.utils.flop_counter import FlopCounterMode

    import mononerf.models.features as feat
    import mononerf.models.projected as projected
    from mononerf.eval import renders

    d = tiny_run.data
    n = d.num_frames
    projections = []
    real = projected.ProjectedVolume.frame_maps

    def count(self, s, f):
        if (int(s), int(f)) not in self._maps:
            projections.append((id(self), int(s), int(f)))
        return real(self, s, f)

    monkeypatch.setattr(projected.ProjectedVolume, "frame_maps", count)
    monkeypatch.setattr(tiny_run, "cfg", tiny_run.cfg.with_overrides(["info.chunk=16"]))  # many chunks per frame
    t = torch.full((d.num_scenes,), frame_time(2, n))
    work = {}
    for ds in (1, 2):
        tiny_run.renderer._projected = []
        projections.clear()
        with torch.inference_mode(), FlopCounterMode(display=False) as fc:
            for view in range(3):  # three frames of a video at one time
                renders.render_outputs(tiny_run, d.render_poses[:, view, :, :4], t, ("rgb",), downscale=ds)
        work[ds] = fc.get_total_flops()
        if ds == 1:  # big enough to project: once per scene and frame read, whatever the frames and chunks
            assert projections and len(projections) == len(set(projections)) <= 3 * d.num_scenes
    assert work[2] <= work[1] / 3, work
    # the coarse levels of a native feature volume are resized once per frame read, then served from its cache
    lat = tiny_run.renderer.features.latent
    if isinstance(lat, feat.FeatureVolume) and any(tuple(lv.shape[-2:]) != lat.grid for lv in lat.levels):
        before = lat.resizes
        with torch.inference_mode():
            renders.render_outputs(tiny_run, d.render_poses[:, 0, :, :4], t, ("rgb",), downscale=1)
        assert lat.resizes == before  # every frame it reads was resized by the renders above


def test_feature_volume_resizes_each_frame_once():
    import mononerf.models.features as feat
    import mononerf.models.projected as projected

    g = torch.Generator().manual_seed(0)
    fine, coarse = torch.randn(2, 3, 4, 6, 8, generator=g), torch.randn(2, 5, 4, 3, 4, generator=g)
    vol = feat.FeatureVolume([fine, coarse], (6, 8))
    ref = feat.FeatureVolume([fine, coarse], (6, 8), cache_bytes=0)
    for s, f in [(0, 1), (1, 2), (0, 1), (1, 2), (0, 3)]:
        for a, b in zip(vol.frame_maps(s, f), ref.frame_maps(s, f)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert vol.resizes == 3 and ref.resizes == 5  # cached: three distinct frames; uncached: every read
    one = 5 * 6 * 8 * 4  # bytes of one resized frame
    small = feat.FeatureVolume([fine, coarse], (6, 8), cache_bytes=2 * one)
    with torch.inference_mode():  # a render's reads
        for s, f in [(0, 0), (0, 1), (0, 2), (0, 0)]:  # room for two: the oldest goes first
            small.frame_maps(s, f)
    assert small.resizes == 4 and small.cached_bytes() == 2 * one
    # a training step's reads (outside inference mode) use the cache only when every frame fits (here 2 of 8): they empty it
    # and keep nothing, so the step's memory does not include maps it would seldom read again (issue 29)
    for a, b in zip(small.frame_maps(0, 1), ref.frame_maps(0, 1)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    small.frame_maps(0, 1)
    assert small.resizes == 6 and small.cached_bytes() == 0
    assert vol.all_resized_bytes == 8 * one <= vol.cache_bytes and vol.cached_bytes() > 0  # all fit: kept in training
    # a map first read by a render (inference mode) is kept as an ordinary tensor: a training step can then
    # differentiate through a lookup of it (with respect to the sampling grid, as the trajectory's points are)
    with torch.inference_mode():
        vol.frame_maps(1, 0)
    m = vol.frame_maps(1, 0)[1]
    assert not m.is_inference()
    uv = torch.rand(1, 5, 1, 2, requires_grad=True)
    torch.nn.functional.grid_sample(m, uv, align_corners=True).sum().backward()
    assert uv.grad is not None and uv.grad.abs().sum() > 0
    grad = feat.FeatureVolume([fine, coarse.clone().requires_grad_()], (6, 8))
    grad.frame_maps(0, 0)
    grad.frame_maps(0, 0)
    assert grad.resizes == 2 and grad.cached_bytes() == 0  # maps with autograd are never kept


def test_multiview_grid_evaluates(tiny_run, tmp_path):
    from mononerf.eval.evaluate import evaluate_run
    from mononerf.eval.video import render_mode

    with torch.inference_mode():
        render_mode(tiny_run, 2, "multiview", tmp_path / "mv" / "step_000002", progress=False, grid=2)
    step = tmp_path / "mv" / "step_000002"
    for sub in ("imgs", "imgs_static", "imgs_dynamic", "blend"):  # the blended render and what each branch does
        pngs = sorted(str(p.relative_to(step)) for p in step.rglob(f"{sub}/*.png"))
        # 2 times x 2 cameras x 2 scenes; grid 2 of 5 frames: the first and the last time and camera
        assert pngs == [f"{t:08d}/{sub}/{c:03d}_{b:02d}.png" for t in (1, 5) for c in (0, 4) for b in (0, 1)]
    scene_root = Path(tiny_run.cfg.info.dataset_file_lists[0]).parent
    (result,) = evaluate_run(tmp_path / "mv", scene_root, use_lpips=False, write=False, verbose=False)
    assert set(result["scenes"]) == {"syn_a", "syn_b"} and len(result["scenes"]["syn_a"]["frames"]) == 4
    assert 0 < result["mean"]["psnr"] < 60


def test_edits_warn_when_the_dynamic_part_is_empty(tiny_run, tmp_path, capsys, monkeypatch):
    """The warning reads the blending of the edit's own frames (or, for remove-dynamic, the unedited scene's at three
    times); it fires below the bound and names the scene, and the video is still written."""
    import mononerf.edit.cli as cli
    from mononerf.edit import edits

    d, n = tiny_run.data, tiny_run.data.num_frames
    frames = edit_frames(tiny_run, downscale=2, spec=EditSpec("compose", 0, 1))
    peak = edits.dynamic_blend_peak(tiny_run, EditSpec("compose", 0, 1), frames)
    assert peak == max(float(f["dynamicness_map"].max()) for f in frames) and peak > 0
    # remove-dynamic: the unedited scene's blending at its first / middle / last time, from its own cameras
    probe = edits.dynamic_blend_peak(tiny_run, EditSpec("remove-dynamic", 1, None), [], downscale=1)
    small = max(1, min(4, d.height // 8, d.width // 8))
    H, W, focal = d.height // small, d.width // small, d.focals / small
    expect = 0.0
    for e in sorted({0, (n - 1) // 2, n - 1}):
        t = torch.full((2,), frame_time(e, n))
        out = tiny_run.renderer.render_views(d.poses[:, e, :, :4], t, Pinhole.centred(H, W, focal), chunk=4096)
        expect = max(expect, float(out["dynamicness_map"][1].max()))
    assert probe == pytest.approx(expect, abs=1e-5)
    assert edits.empty_dynamic_warning(tiny_run, EditSpec("compose", 0, 1), 0.5) is None
    text = edits.empty_dynamic_warning(tiny_run, EditSpec("compose", 0, 1), 1e-3)
    assert "dynamic part of syn_b is empty" in text and "compose" in text
    run = str(tiny_run.run_dir)
    argv = [run, "retime", "--scene", "0", "--speed", "2", "--downscale", "2", "--n-samples", "4", "--device", "cpu"]
    monkeypatch.setattr(edits, "EMPTY_BLEND", 0.0)  # nothing is empty
    assert cli.main(argv + ["--out", str(tmp_path / "a.mp4")]) == 0
    assert "warning" not in capsys.readouterr().err
    monkeypatch.setattr(edits, "EMPTY_BLEND", 2.0)  # everything is
    assert cli.main(argv + ["--out", str(tmp_path / "b.mp4")]) == 0
    assert "warning: the dynamic part of syn_a is empty" in capsys.readouterr().err
    assert (tmp_path / "b.mp4").is_file()


def test_render_one_scene_of_a_multi_scene_run(tiny_run, tmp_path):
    import json

    from mononerf.eval import renders
    from mononerf.eval.cli import video_main as main
    from mononerf.eval.video import select_run_scenes

    d = tiny_run.data
    t = torch.full((1,), frame_time(1, d.num_frames))
    one = select_run_scenes(tiny_run, ["syn_b"])
    assert one.data.names == ["syn_b"] and one.data.num_scenes == 1 and tiny_run.data.num_scenes == 2
    with torch.inference_mode():
        both = renders.render_outputs(tiny_run, d.render_poses[:, 3, :, :4], t.expand(2), ("rgb",), downscale=2)
        alone = renders.render_outputs(one, one.data.render_poses[:, 3, :, :4], t, ("rgb",), downscale=2)
    np.testing.assert_allclose(alone["rgb"][0], both["rgb"][1], atol=1e-5)
    out = tmp_path / "sp"
    assert main([str(tiny_run.run_dir), "--scenes", "syn_b", "--frames", "2", "--downscale", "4", "--device", "cpu",
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.mp4")) == ["rgb_00.mp4"]
    assert json.loads((out / "scenes.json").read_text()) == {"00": "syn_b"}
    assert main([str(tiny_run.run_dir), "--scenes", "nope", "--device", "cpu", "--out", str(out)]) == 2


def test_renders_with_other_settings_leave_the_runs_alone(tiny_run):
    # the render settings are frozen; a render with fewer samples changes them for its block only (issue 17)
    import dataclasses

    renderer = tiny_run.renderer
    kept = renderer.settings
    with pytest.raises(dataclasses.FrozenInstanceError):
        kept.n_samples = 3
    d = tiny_run.data
    t = torch.full((d.num_scenes,), frame_time(1, d.num_frames))
    with pytest.raises(RuntimeError, match="inside"):
        with renderer.using(n_samples=3) as r:
            assert r is renderer and renderer.settings.n_samples == 3 and renderer.settings.ndc == kept.ndc
            with torch.inference_mode():
                out = renderer.render_views(d.poses[:, 0, :, :4], t, Pinhole.centred(4, 6, d.focals), dynamic=True,
                                            chunk=64)
            assert out["rgb_map_full"].shape[:3] == (d.num_scenes, 4, 6)
            raise RuntimeError("inside")
    assert renderer.settings is kept
