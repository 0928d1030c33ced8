"""The space-time viewer without a browser: client camera → rays → image, and the command's one-line errors.

The browser test (Chromium driven by playwright) is in tests/test_view_browser.py.
"""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest
import torch

from mononerf.geometry.cameras import Pinhole
from mononerf.errors import MonoNeRFError
from mononerf.eval import visuals
from mononerf.render.field import RenderCancelled
from mononerf.geometry.rays import get_rays
from mononerf.render.images import prepare_rays
from mononerf.view import render as vr


def tiny_view_run(root, size=(48, 32), frames=5):
    """Two synthetic scenes, a run trained for one static and two dynamic steps."""
    from mononerf.config import load_config
    from mononerf.data.synthetic import generate_scene
    from mononerf.train.trainer import Trainer
    from tests.test_train import tiny_argv

    for p in "ab":
        generate_scene(root / f"syn_{p}", preset=p, frames=frames, size=size, seed=0)
    trainer = Trainer(load_config(tiny_argv(root, root / "runs", names=("a", "b"), extra=[
        "train.N_static_iters=1", "train.N_iters=2", "train.i_weights=1"])), progress=False)
    trainer.fit()
    return trainer.run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_view_run(tmp_path_factory.mktemp("view"))


@pytest.fixture(scope="module")
def loaded(run_dir):
    from mononerf.eval.video import load_run

    trainer, step = load_run(run_dir, "cpu")
    trainer.model.eval()
    return trainer


# ------------------------------------------------------------------------------------------------- cameras


def test_client_camera_round_trip_and_axes():
    g = np.random.default_rng(0)
    for _ in range(20):
        q = g.normal(size=4)
        q /= np.linalg.norm(q)
        q = -q if q[0] < 0 else q
        np.testing.assert_allclose(vr.matrix_to_quat(vr.quat_to_matrix(q)), q, atol=1e-12)
        pos = g.normal(size=3)
        c2w = vr.c2w_from_client(q, pos)
        wxyz, p = vr.client_from_c2w(c2w)
        np.testing.assert_allclose(vr.c2w_from_client(wxyz, p), c2w, atol=1e-12)
    # identity OpenCV camera looks along +z with y down: as an OpenGL pose its back axis is -z and its up axis -y
    c2w = vr.c2w_from_client([1, 0, 0, 0], [1, 2, 3])
    np.testing.assert_allclose(c2w, [[1, 0, 0, 1], [0, -1, 0, 2], [0, 0, -1, 3]], atol=1e-12)
    assert vr.image_size(16 / 9, 18) == (18, 32)
    assert vr.fov_y(32, 16) == pytest.approx(math.pi / 2)
    with pytest.raises(ValueError):
        vr.image_size(float("nan"), 10)


def test_client_rays_of_a_training_camera_are_the_render_rays():
    """A client with the training camera's pose, field of view and aspect, at half the height, casts exactly the
    rays of a full render (FieldRenderer.render_views) at downscale 2 (the NDC box stays the training camera's)."""
    g = torch.Generator().manual_seed(0)
    rot, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    c2w = torch.cat([rot * torch.sign(torch.det(rot)), torch.randn(3, 1, generator=g, dtype=torch.float64)], 1)
    h0, w0, f0 = 32.0, 48.0, 40.0
    req = vr.ViewRequest(tuple(map(tuple, c2w.tolist())), vr.fov_y(h0, f0), w0 / h0, 0.0, 16)
    H, W = req.size
    assert (H, W) == (16, 24) and req.focal == pytest.approx(20.0)
    got = vr.client_rays(req.pose(torch.float64), req.camera, Pinhole.centred(h0, w0, f0), pixel_offset=0.5)
    rays_o, rays_d = get_rays(16, 24, torch.tensor([20.0], dtype=torch.float64), c2w[None], pixel_offset=0.5)
    want = prepare_rays(rays_o, rays_d, Pinhole.centred(16, 24, torch.tensor([20.0], dtype=torch.float64)))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # a wider client canvas sees more of the scene in the same NDC box: its centre column keeps the same rays
    wide = vr.client_rays(req.pose(torch.float64), Pinhole.centred(16, 48, req.focal), Pinhole.centred(h0, w0, f0),
                          pixel_offset=0.5)
    torch.testing.assert_close(wide.directions.reshape(16, 48, 3)[:, 12:36], got.directions.reshape(16, 24, 3))


def test_client_flow_of_a_static_point_is_zero_and_of_a_shift_is_the_shift():
    from mononerf.eval.visuals import induced_flow_map

    c2w = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=torch.float64)
    H, W, f = 4, 6, 5.0
    rays_o, rays_d = get_rays(H, W, f, c2w, pixel_offset=0.0)
    pts = rays_o + 2.0 * rays_d  # world points on each pixel's ray (camera at the origin looking down -z)
    cam = Pinhole.centred(H, W, f)
    view = vr.client_view(c2w, cam, cam, ndc=False)

    def flow(p):
        return induced_flow_map(p[None], view.c2w, view.camera, view.pixel_offset, view.ndc, ndc_box=view.ndc_box)[0]

    torch.testing.assert_close(flow(pts), torch.zeros(H, W, 2, dtype=torch.float64), atol=1e-12, rtol=0)
    # the points move 0.4 to the right at depth 2: f·0.4/2 = 1 pixel to the right
    moved = flow(pts + torch.tensor([0.4, 0, 0], dtype=torch.float64))
    torch.testing.assert_close(moved, torch.tensor([1.0, 0.0], dtype=torch.float64).expand(H, W, 2))


# ------------------------------------------------------------------------------------------------- renders


def test_training_camera_render_equals_the_run_render(loaded):
    """Scene 1 of a two-scene run from its training camera 2 at time 2: the viewer's single-scene render equals the
    renderer's all-scene full render (same rays, same samples, features of that scene only)."""
    from mononerf.geometry.poses import frame_time

    d = loaded.data
    view = vr.SceneView(loaded, 1, chunk=97)  # odd chunk: chunking must not matter
    req = view.training_request(2, height=d.height // 2)
    assert req.size == (d.height // 2, d.width // 2)
    maps = view.render(req)
    t = torch.full((d.num_scenes,), frame_time(2, d.num_frames))
    with torch.inference_mode():
        ref = loaded.renderer.render_views(d.poses[:, 2, :, :4], t, d.camera.downscaled(2))
    for key in visuals.reads():
        torch.testing.assert_close(maps[key], ref[key][1], rtol=1e-4, atol=1e-5, msg=key)
    for name in vr.menu():
        img = view.image(req, name, maps)
        assert img.shape == (d.height // 2, d.width // 2, 3) and img.dtype == np.uint8, name
    np.testing.assert_array_equal(view.image(req, "rgb", maps),
                                  (ref["rgb_map_full"][1].clamp(0, 1) * 255).round().to(torch.uint8).numpy())


def test_time_changes_the_render_and_cancel_stops_it(loaded):
    view = vr.SceneView(loaded, 0, chunk=64, n_samples=4)
    a = view.image(view.training_request(0, frame=0.0, height=8), "rgb", view.render(view.training_request(
        0, frame=0.0, height=8)))
    req = view.training_request(0, frame=loaded.data.num_frames - 1, height=8)
    b = view.image(req, "rgb", view.render(req))
    assert a.shape == b.shape == (8, 12, 3)
    assert np.abs(a.astype(int) - b.astype(int)).max() > 0  # the dynamic part moves with time
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(RenderCancelled):
        view.render(req, cancel=cancel)
    assert len(calls) == 2  # stopped before the second chunk
    with pytest.raises(MonoNeRFError, match="outside the video"):
        view.render(vr.ViewRequest(req.c2w, req.fov_y, req.aspect, 99.0, 8))
    with pytest.raises(MonoNeRFError, match="scene 5"):
        vr.SceneView(loaded, 5)


# ------------------------------------------------------------------------------------------------- command errors


def test_errors_are_one_line(run_dir, tmp_path, capsys):
    from mononerf.view.cli import main

    (tmp_path / "config.conf").write_text((run_dir / "config.conf").read_text())
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no checkpoint" in err and "\n" not in err
    assert main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a run folder" in err and "\n" not in err

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main([str(run_dir), "--port", str(port), "--host", "127.0.0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"port {port}" in err and "in use" in err and "\n" not in err

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert main([str(run_dir), "--scene", "nope", "--port", str(free), "--host", "127.0.0.1", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "scene 'nope'" in err and "syn_a" in err and "\n" not in err


# ------------------------------------------------------------------------------------------------- progressive loop


class _FakeCamera:
    def __init__(self, c2w, fov, aspect):
        self.wxyz, self.position = vr.client_from_c2w(c2w)
        self.fov, self.aspect = fov, aspect


class _FakeScene:
    def __init__(self):
        self.images = []

    def set_background_image(self, image, format="auto"):
        self.images.append(image)


class _FakeClient:
    client_id = 7

    def __init__(self, camera):
        self.camera, self.scene = camera, _FakeScene()


def test_progressive_render_loop_coarse_then_full(loaded):
    """One browser's render thread without a browser: a change gives a coarse frame, then the full one once the
    camera rests; a new time gives a new pair; the frames are the requested sizes and the status line follows."""
    from mononerf.view.server import Viewer, _Client

    d = loaded.data
    viewer = Viewer(loaded, 2, coarse_height=4, fine_height=10, rest_s=0.05, n_samples=4, chunk=64)
    statuses = []
    viewer.set_status = statuses.append
    view = viewer.view
    req = view.training_request(0)
    client = _FakeClient(_FakeCamera(np.array(req.c2w), req.fov_y, 2.0))
    c = _Client(viewer, client)
    c.thread.start()
    try:
        c.touch()
        coarse = viewer.wait_render(lambda i: not i.fine, timeout=60)
        full = viewer.wait_render(lambda i: i.fine, timeout=60)
        assert coarse.size == (4, 8) and full.size == (10, 20) and full.count == coarse.count + 1
        assert [im.shape for im in client.scene.images[:2]] == [(4, 8, 3), (10, 20, 3)]
        assert statuses[-1].startswith("frame 0.00 · full 20x10")
        viewer.frame = float(d.num_frames - 1)
        c.touch()
        later = viewer.wait_render(lambda i: i.fine and i.frame == d.num_frames - 1, timeout=60)
        assert later.count == full.count + 2  # a coarse then a full frame of the new time
        assert not np.array_equal(client.scene.images[-1], client.scene.images[1])
    finally:
        c.stop()
        c.thread.join(timeout=30)
    assert not c.thread.is_alive()


# ------------------------------------------------------------------------------------------------- a new render output


def test_adding_a_render_output_is_a_map_entry_and_a_visual_entry(loaded, tmp_path, monkeypatch):
    """The recipe of docs/architecture.md, "Adding a render output": a per-ray map made from per-sample outputs is
    one DERIVED_MAPS entry, a picture one VISUALS entry; the render path, the videos and the viewer then all have
    it, and nothing else changes."""
    from mononerf.eval import renders, visuals
    from mononerf.geometry.poses import frame_time
    from mononerf.render import outputs
    from mononerf.render.composite import accumulate_along_rays, render_weights

    d = loaded.data
    t = torch.full((d.num_scenes,), frame_time(1, d.num_frames))
    c2w, camera = d.poses[:, 1, :, :4], d.camera.downscaled(2)
    # a per-ray map: the dynamic depth again, as the weights' sum over the sample depths
    monkeypatch.setitem(outputs.DERIVED_MAPS, "depth_again", ("weights_d", "z_vals"))
    out = loaded.renderer.render_views(c2w, t, camera, keys=("depth_map_d", "depth_again"))
    assert set(out) == {"depth_map_d", "depth_again"}
    torch.testing.assert_close(out["depth_again"], out["depth_map_d"], rtol=1e-5, atol=1e-6)
    w = torch.tensor([[0.25, 0.5, 0.25]])
    assert accumulate_along_rays(w).item() == 1.0 and accumulate_along_rays(w, torch.tensor([[1.0, 2, 3]])) == 2.0
    weights, trans = render_weights(torch.tensor([[0.5, 0.5, 1.0]]))
    torch.testing.assert_close(trans, torch.tensor([[1.0, 0.5, 0.25]]))
    torch.testing.assert_close(weights, torch.tensor([[0.5, 0.25, 0.25]]))

    # a picture: the accumulated opacity as grey, in the videos and in the viewer's menu
    entry = visuals.Visual("opacity", ("acc_map_full",), lambda maps, view: maps["acc_map_full"],
                           lambda frames: [np.repeat((np.clip(f, 0, 1) * 255).round().astype(np.uint8)[..., None], 3,
                                                     -1) for f in frames])
    monkeypatch.setitem(visuals.VISUALS, "opacity", entry)
    assert visuals.parse_outputs("rgb,opacity") == ("rgb", "opacity")
    maps = renders.render_outputs(loaded, c2w, t, ("opacity",), downscale=2)
    assert maps["opacity"].shape == (d.num_scenes, d.height // 2, d.width // 2)
    # (the blended opacity may pass 1: the original's blended transmittance is not 1 − its weights' sum)
    torch.testing.assert_close(torch.from_numpy(maps["opacity"]), loaded.renderer.render_views(
        c2w, t, camera, keys=("acc_map_full",))["acc_map_full"])
    paths = renders.render_video(loaded, [c2w], [float(t[0])], tmp_path / "v", outputs=("opacity",), downscale=2)
    assert [p.name for p in paths] == ["opacity_00.mp4", "opacity_01.mp4"]
    view = vr.SceneView(loaded, 0, chunk=256)
    assert vr.menu()["opacity"] == "opacity"
    req = view.training_request(1, height=d.height // 2)
    shown = view.render(req)
    assert "acc_map_full" in shown  # the viewer renders what the registry's pictures read
    img = view.image(req, "opacity", shown)
    assert img.shape == (d.height // 2, d.width // 2, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[..., 0], entry.to_rgb([shown["acc_map_full"].numpy()])[0][..., 0])
