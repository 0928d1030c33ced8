"""The camera object (mononerf/geometry/cameras.py): LLFF cameras give the original's rays and projections to the
bit; general intrinsics round-trip; scaling and conversions."""

import numpy as np
import pytest
import torch

from mononerf.geometry.cameras import Cameras
from mononerf.geometry.rays import get_rays, invert_pose, project_to_pixels


def _poses(n=3, h=18, w=32, f=27.5, seed=0):
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 3, 5), np.float32)
    for i in range(n):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        out[i, :, :3] = q * np.sign(np.linalg.det(q))
        out[i, :, 3] = rng.normal(size=3)
        out[i, :, 4] = (h, w, f + i)
    return out


def test_llff_cameras_give_the_rays_of_get_rays_to_the_bit():
    poses = torch.from_numpy(_poses())
    cams = Cameras.from_llff(poses)
    assert (cams.height, cams.width) == (18, 32) and cams.is_centred()
    o, d = cams.rays()
    o_ref, d_ref = get_rays(18, 32, poses[:, 2, 4], poses[:, :, :4])
    assert torch.equal(o, o_ref) and torch.equal(d, d_ref)
    o5, d5 = cams.rays(pixel_offset=0.5)
    assert torch.equal(d5, get_rays(18, 32, poses[:, 2, 4], poses[:, :, :4], pixel_offset=0.5)[1])
    np.testing.assert_array_equal(cams.to_llff(), poses.numpy())


def test_llff_projection_agrees_with_project_to_pixels():
    poses = torch.from_numpy(_poses())
    cams = Cameras.from_llff(poses)
    g = torch.Generator().manual_seed(0)
    local = torch.rand(3, 50, 3, generator=g) * torch.tensor([2.0, 2.0, 3.0]) - torch.tensor([1.0, 1.0, 5.0])
    pts = (local[..., None, :] * poses[:, None, :, :3]).sum(-1) + poses[:, None, :, 3]  # in front of each camera
    px, depth = cams.project(pts)
    ref = project_to_pixels(pts, invert_pose(poses[:, :, :4]), poses[:, 2, 4][:, None],
                            torch.tensor([[16.0, 9.0]]).expand(3, 2))
    # (translate-then-rotate here, rotate-then-translate there: float32 round-off only)
    torch.testing.assert_close(px, ref, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(depth, -local[..., 2], rtol=1e-5, atol=1e-5)


def test_general_intrinsics_rays_and_projection_round_trip():
    poses = _poses(2)
    cams = Cameras.create(poses[:, :, :4], fx=[30.0, 28.0], fy=[33.0, 26.0], cx=[15.2, 17.9], cy=[8.1, 9.6],
                          height=18, width=32)
    assert not cams.is_centred()
    o, d = cams.rays()
    pts = o + 2.5 * d  # each pixel's ray at depth 2.5 along the viewing axis (d has z = -1 in the camera)
    px, depth = cams.project(pts.reshape(2, -1, 3))
    grid = torch.stack(torch.meshgrid(torch.arange(32.0), torch.arange(18.0), indexing="xy"), -1).reshape(-1, 2)
    torch.testing.assert_close(px, grid.expand(2, -1, -1), atol=2e-4, rtol=0)
    torch.testing.assert_close(depth, torch.full_like(depth, 2.5), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="off-centre"):
        cams.to_llff()


def test_scaled_cameras_see_the_same_point_at_scaled_pixels():
    cams = Cameras.create(_poses(1)[:, :, :4], 30.0, 31.0, 16.5, 8.25, 18, 32)
    half = cams.scaled(0.5)
    assert (half.height, half.width) == (9, 16)
    pts = torch.tensor([[[0.3, -0.2, -3.0]]]) + cams.c2w[:, :, 3][:, None]
    torch.testing.assert_close(half.project(pts)[0], cams.project(pts)[0] * 0.5)


def test_pixel_centre_convention_moves_the_principal_point_half_a_pixel():
    c = Cameras.from_pixel_centres(_poses(1)[:, :, :4], 20.0, 20.0, 16.5, 9.5, 18, 32)
    assert float(c.cx[0]) == 16.0 and float(c.cy[0]) == 9.0 and c.is_centred()
    ref = Cameras.from_llff(torch.from_numpy(_poses(1, f=20.0)))
    torch.testing.assert_close(c.rays()[1], ref.rays()[1])


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="one per camera"):
        Cameras.create(_poses(2)[:, :, :4], [1.0, 2.0, 3.0], 1.0, 1.0, 1.0, 4, 4)
    with pytest.raises(ValueError, match="distortion"):
        Cameras.create(_poses(2)[:, :, :4], 1.0, 1.0, 1.0, 1.0, 4, 4, distortion=np.zeros((3, 5)))
    cams = Cameras.create(_poses(2)[:, :, :4], 1.0, 1.0, 2.0, 2.0, 4, 4, distortion=[0.1, 0, 0, 0, 0])
    assert cams.has_distortion and not cams.is_centred()
    assert len(cams[1]) == 1 and len(cams[[0, 1]]) == 2


# ------------------------------------------------------------------------------------------------ Pinhole
def test_the_centred_pinhole_gives_the_original_functions_values_to_the_bit():
    from mononerf.geometry.cameras import Pinhole
    from mononerf.geometry.rays import camera_to_pixels, ndc_rays, ndc_to_world, world_to_ndc

    poses = torch.from_numpy(_poses())
    H, W, f = 18, 32, poses[:, 2, 4]
    cam = Pinhole.centred(H, W, f)
    o, d = get_rays(H, W, f, poses[:, :, :4])
    o2, d2 = cam.image_rays(poses[:, :, :4])
    assert torch.equal(o, o2) and torch.equal(d, d2)
    a, b = ndc_rays(H, W, f, 1.0, o, d), cam.ndc_rays(1.0, o, d)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    pts = a[0] + 0.3 * a[1]
    assert torch.equal(ndc_to_world(pts, H, W, f), cam.ndc_to_world(pts))
    world = ndc_to_world(pts, H, W, f)
    assert torch.equal(world_to_ndc(world, H, W, f), cam.world_to_ndc(world))
    assert torch.equal(camera_to_pixels(world, f, (W / 2, H / 2)), cam.to_pixels(world))
    small = cam.downscaled(2)
    assert small.size == (16, 9) and small.cx == 8.0 and small.cy == 4.5 and torch.equal(small.fx, f / 2)


def test_an_off_centre_pinholes_ndc_box_fits_its_image_and_inverts():
    """fx != fy and an off-centre principal point: the ray through pixel x starts at NDC x = 2x/W - 1 (the box
    spans the image, -1 at its left edge, +1 at its right), NDC -> world puts points back on the world rays, and a
    point on a pixel's ray projects back to that pixel."""
    from mononerf.geometry.cameras import Pinhole
    from mononerf.geometry.flow import induce_flow

    H, W = 18, 32
    cam = Pinhole(torch.tensor([30.0, 24.0]), torch.tensor([33.0, 26.0]), torch.tensor([13.2, 17.9]),
                  torch.tensor([8.1, 10.6]), H, W)
    c2w = torch.eye(4)[:3].expand(2, 3, 4).double()  # the NDC reference frame: the box is defined there
    cam = cam.to(c2w)
    o, d = cam.image_rays(c2w)  # (2, H, W, 3)
    o_ndc, d_ndc = cam.ndc_rays(1.0, o, d)
    xs = torch.arange(W, dtype=torch.float64).expand(2, H, W)
    ys = torch.arange(H, dtype=torch.float64)[:, None].expand(2, H, W)
    torch.testing.assert_close(o_ndc[..., 0], 2 * xs / W - 1)
    torch.testing.assert_close(o_ndc[..., 1], 1 - 2 * ys / H)
    for t in (0.0, 0.4, 0.9):
        world = cam.ndc_to_world(o_ndc + t * d_ndc)
        # on the world ray: world = o + s·d for some s, i.e. world's x/z and y/z are the ray's
        torch.testing.assert_close(world[..., :2] / world[..., 2:], d[..., :2] / d[..., 2:])
        torch.testing.assert_close(cam.world_to_ndc(world), o_ndc + t * d_ndc)
    pixel_xy = torch.stack([xs, ys], -1).reshape(2, -1, 2)
    pts = (o_ndc + 0.5 * d_ndc).reshape(2, -1, 1, 3)
    flow = induce_flow(pts, torch.ones(pts.shape[:3], dtype=torch.float64), c2w, cam, pixel_xy)
    torch.testing.assert_close(flow, torch.zeros_like(flow), atol=1e-9, rtol=0)
    off = cam.downscaled(2)  # the principal point's offset from the centre halves with the image
    torch.testing.assert_close(off.cx, 8.0 + (cam.cx - 16.0) / 2)
    with pytest.raises(ValueError, match="fx must be"):
        cam.expand(3, c2w)
