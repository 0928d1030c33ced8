"""Procedural scenes and a numpy ray caster for the synthetic dynamic scene generator.

A scene is a short hand-held, forward-facing monocular clip of analytic primitives: an (infinite) textured back
plane, a few static boxes at different depths, and one or two textured objects (boxes, spheres) that translate and
rotate. Everything is deterministic per (preset, seed, frames, size).

Camera model (method.md §1.1–1.3, §8.15): c2w in the OpenGL convention (columns right, up, back; the camera looks along
-z). A pixel with integer coordinates (x, y), no half-pixel offset, casts the camera-space direction
``[(x - W/2)/f, -(y - H/2)/f, -1]``; since that direction has z = -1, the ray parameter of a hit *is* its depth along
the camera's -z axis. Rendering at (W/2, H/2, f/2) therefore samples exactly the even full-resolution pixels.

Textures are smooth multi-octave 3D value noise (hash-based, so never periodic) evaluated at the hit point in the
primitive's own frame, so they move rigidly with it. The finest octave is a few half-resolution pixels wide at the
primitive's nominal depth so that point sampling does not alias. Shading is fixed in each primitive's frame (per-face
brightness of boxes), so a surface point keeps its colour over time (brightness constancy, which the ground-truth
flow relies on).

Dims: T frames, H/W image height/width, M points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRESETS = ("a", "b", "c")
FOCAL_PER_WIDTH = 0.8  # full-res focal = 0.8 * W (horizontal half field of view ~32 degrees)
TEXEL_PIXELS = 3.0  # finest texture cell, in half-resolution pixels at the primitive's nominal depth
CAMERA_SWEEP = 0.4  # sideways camera travel over the clip (scene units)
CHROMA = {"color": 0.8, "luma": 0.35}  # weight of the colour (per-channel) part of the noise
LUMA_GAIN = 1.7  # the luminance part (mean of three noises, std / sqrt(3)) is boosted for SIFT features
_BOX_FACE_SHADE = np.array([1.0, 0.78, 0.92, 0.7, 0.96, 0.84])  # faces +x, -x, +y, -y, +z, -z
VISIBILITY_TOL = 0.03  # relative depth tolerance of a visibility test (seen_from)


@dataclass
class Primitive:
    """One analytic primitive; geometry lives in its own frame, placed by ``obj2world`` (T, 4, 4) per frame.

    kind "plane": the local plane z = 0 (normal +z); "box": |local| <= half_extents; "sphere": |local| <= radius.
    """

    name: str
    kind: str
    size: tuple[float, ...]  # box: 3 half extents; sphere: (radius,); plane: ()
    obj2world: np.ndarray  # (T, 4, 4) float64
    moving: bool
    base_color: np.ndarray  # (3,)
    gain: float  # texture contrast
    style: str  # "color": independent noise per channel; "luma": shared luminance noise plus weak chroma
    octave_weights: tuple[float, ...]
    salt: int
    cell: float = 0.1  # finest texture cell in world units (set by build_scene)

    def describe(self) -> dict:
        """JSON-friendly description (geometry and texture parameters, not the per-frame transforms)."""
        return {
            "name": self.name, "kind": self.kind, "size": list(self.size), "moving": self.moving,
            "base_color": [float(c) for c in self.base_color], "texture_style": self.style,
            "texture_cell": float(self.cell), "gain": self.gain,
        }


@dataclass
class Scene:
    preset: str
    seed: int
    width: int  # full-resolution W
    height: int  # full-resolution H
    focal: float  # full-resolution focal (pixels)
    c2w: np.ndarray  # (T, 4, 4) OpenGL camera-to-world
    primitives: list[Primitive]

    @property
    def frames(self) -> int:
        return int(self.c2w.shape[0])


@dataclass
class Layer:
    """A rendered view: depth (H, W) (inf where nothing is hit), prim (H, W) int primitive index (-1 = miss),
    rgb (H, W, 3) in [0, 1]."""

    depth: np.ndarray
    prim: np.ndarray
    rgb: np.ndarray


# ----------------------------------------------------------------------------------------------------- geometry
def rotation(axis, angle: float) -> np.ndarray:
    """Rotation matrix (3, 3) of ``angle`` radians about ``axis`` (Rodrigues)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def rigid(rot: np.ndarray, trans) -> np.ndarray:
    """4x4 transform from a (3, 3) rotation and a translation (3,)."""
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = trans
    return m


def camera_dirs(width: int, height: int, focal: float) -> np.ndarray:
    """Camera-space ray directions (H, W, 3) of integer pixels: [(x - W/2)/f, -(y - H/2)/f, -1] (method.md §1.3)."""
    x, y = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64), indexing="xy")
    return np.stack([(x - width / 2) / focal, -(y - height / 2) / focal, -np.ones_like(x)], axis=-1)


def project(pts_world: np.ndarray, c2w: np.ndarray, width: int, height: int, focal: float):
    """Project world points (..., 3) into a camera: returns pixel x, pixel y and depth (each (...)), inverse of
    :func:`camera_dirs` (depth = distance along the camera's -z axis)."""
    rot, center = c2w[:3, :3], c2w[:3, 3]
    pts_cam = (pts_world - center) @ rot  # R^T (X - o) for row vectors
    depth = -pts_cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        px = width / 2 + focal * pts_cam[..., 0] / depth
        py = height / 2 - focal * pts_cam[..., 1] / depth
    return px, py, depth


def surface_points(depth: np.ndarray, c2w: np.ndarray, focal: float) -> tuple[np.ndarray, np.ndarray]:
    """World points (H, W, 3) of a view's depth (H, W) along -z (inf: no hit, the camera centre), and the hits."""
    h, w = depth.shape
    dirs = camera_dirs(w, h, focal) @ c2w[:3, :3].T
    finite = np.isfinite(depth)
    return c2w[:3, 3] + np.where(finite, depth, 0.0)[..., None] * dirs, finite


def moved(scene: "Scene", pts: np.ndarray, prim: np.ndarray, src: int, dst: int) -> np.ndarray:
    """A copy of ``pts`` (H, W, 3) on primitives ``prim`` (H, W) at time ``src``, moved with them to ``dst``."""
    out = pts.copy()
    for k, p in enumerate(scene.primitives):
        sel = prim == k
        if p.moving and sel.any():
            rel = p.obj2world[dst] @ np.linalg.inv(p.obj2world[src])
            out[sel] = out[sel] @ rel[:3, :3].T + rel[:3, 3]
    return out


def seen_from(pts: np.ndarray, finite: np.ndarray, c2w: np.ndarray, focal: float, depth: np.ndarray):
    """World points (H, W, 3) seen by camera ``c2w`` with view depth (h, w): pixel x, y (H, W), inside the image
    (the bilinear range [0, w-1] x [0, h-1]), and visible (depth at the nearest pixel within VISIBILITY_TOL)."""
    h, w = depth.shape
    px, py, d = project(pts, c2w, w, h, focal)
    ok = finite & (d > 0) & np.isfinite(px) & np.isfinite(py)
    ok &= (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
    xi = np.clip(np.round(np.where(ok, px, 0)), 0, w - 1).astype(np.int64)
    yi = np.clip(np.round(np.where(ok, py, 0)), 0, h - 1).astype(np.int64)
    return px, py, ok, ok & (np.abs(depth[yi, xi] - d) <= VISIBILITY_TOL * np.abs(d))


def _intersect(prim: Primitive, frame: int, orig: np.ndarray, dirs: np.ndarray):
    """Ray parameter t (M,) (inf = miss), local hit points (M, 3) and face ids (M,) for rays orig + t * dirs."""
    m = prim.obj2world[frame]
    rot, trans = m[:3, :3], m[:3, 3]
    o_l = (orig - trans) @ rot  # (3,)
    d_l = dirs @ rot  # (M, 3)
    n = d_l.shape[0]
    face = np.zeros(n, dtype=np.int64)
    eps = 1e-6
    with np.errstate(divide="ignore", invalid="ignore"):
        if prim.kind == "plane":
            t = -o_l[2] / d_l[:, 2]
        elif prim.kind == "box":
            h = np.asarray(prim.size)
            t1 = (-h - o_l) / d_l
            t2 = (h - o_l) / d_l
            t_near = np.minimum(t1, t2)
            t_far = np.maximum(t1, t2)
            axis = np.argmax(t_near, axis=1)
            t = t_near[np.arange(n), axis]
            hit = (t <= t_far.min(axis=1)) & (t > eps)
            t = np.where(hit, t, np.inf)
            face = 2 * axis + (d_l[np.arange(n), axis] > 0)  # entering face: +axis if the ray goes along -axis
        elif prim.kind == "sphere":
            r = prim.size[0]
            a = np.einsum("ij,ij->i", d_l, d_l)
            b = d_l @ o_l
            c = o_l @ o_l - r * r
            disc = b * b - a * c
            t = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / a, np.inf)
        else:
            raise ValueError(f"unknown primitive kind {prim.kind!r}; expected one of ['box', 'plane', 'sphere']")
    t = np.where(np.isfinite(t) & (t > eps), t, np.inf)
    local = o_l + np.where(np.isfinite(t), t, 0.0)[:, None] * d_l
    return t, local, face


# ----------------------------------------------------------------------------------------------------- textures
def _hash3(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic uint32 hash of integer lattice coordinates (murmur3 finaliser)."""
    mask = np.int64(0xFFFFFFFF)
    h = ((ix * 73856093) & mask) ^ ((iy * 19349663) & mask) ^ ((iz * 83492791) & mask)
    h = (h ^ np.int64((salt * 2654435761) & 0xFFFFFFFF)).astype(np.uint32)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def value_noise(pts: np.ndarray, cell: float, salt: int) -> np.ndarray:
    """Smooth 3-channel value noise in [0, 1] at points (M, 3): random lattice values every ``cell`` units,
    interpolated with a C1 smoothstep. Returns (M, 3)."""
    q = pts / cell
    i0 = np.floor(q).astype(np.int64)
    f = q - i0
    w = f * f * (3.0 - 2.0 * f)
    out = np.zeros((pts.shape[0], 3))
    for dx in (0, 1):
        wx = w[:, 0] if dx else 1 - w[:, 0]
        for dy in (0, 1):
            wy = w[:, 1] if dy else 1 - w[:, 1]
            for dz in (0, 1):
                wz = w[:, 2] if dz else 1 - w[:, 2]
                h = _hash3(i0[:, 0] + dx, i0[:, 1] + dy, i0[:, 2] + dz, salt)
                vals = np.stack([h & 1023, (h >> 10) & 1023, (h >> 20) & 1023], axis=-1) / 1023.0
                out += (wx * wy * wz)[:, None] * vals
    return out


def texture(prim: Primitive, local: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Colour (M, 3) of a primitive at local hit points (M, 3) on faces (M,)."""
    weights = np.asarray(prim.octave_weights, dtype=np.float64)
    acc = np.zeros((local.shape[0], 3))
    for k, wk in enumerate(weights):
        acc += wk * (value_noise(local, prim.cell * 2.0**k, prim.salt * 16 + k) - 0.5)
    acc /= np.sqrt((weights**2).sum())
    chroma = CHROMA[prim.style]
    luma = acc.mean(axis=1, keepdims=True)
    acc = LUMA_GAIN * luma + chroma * (acc - luma)
    rgb = prim.base_color + prim.gain * acc
    if prim.kind == "box":
        rgb = rgb * _BOX_FACE_SHADE[face][:, None]
    return np.clip(rgb, 0.0, 1.0)


# ----------------------------------------------------------------------------------------------------- rendering
def render_layer(prims: list[Primitive], frame: int, c2w: np.ndarray, width: int, height: int, focal: float,
                 ids: list[int] | None = None) -> Layer:
    """Ray-cast primitives ``ids`` (default all) placed as at time ``frame`` into camera ``c2w`` (4, 4)."""
    ids = list(range(len(prims))) if ids is None else ids
    dirs = (camera_dirs(width, height, focal).reshape(-1, 3)) @ c2w[:3, :3].T
    orig = c2w[:3, 3]
    n = dirs.shape[0]
    best_t = np.full(n, np.inf)
    best_id = np.full(n, -1, dtype=np.int64)
    hits = {}
    for k in ids:
        t, local, face = _intersect(prims[k], frame, orig, dirs)
        closer = t < best_t
        best_t = np.where(closer, t, best_t)
        best_id = np.where(closer, k, best_id)
        hits[k] = (local, face)
    rgb = np.zeros((n, 3))
    for k in ids:
        sel = best_id == k
        if sel.any():
            local, face = hits[k]
            rgb[sel] = texture(prims[k], local[sel], face[sel])
    return Layer(best_t.reshape(height, width), best_id.reshape(height, width), rgb.reshape(height, width, 3))


def composite(back: Layer, front: Layer) -> Layer:
    """Per-pixel nearest of two layers of the same camera."""
    near = front.depth < back.depth
    return Layer(np.where(near, front.depth, back.depth), np.where(near, front.prim, back.prim),
                 np.where(near[..., None], front.rgb, back.rgb))


# ----------------------------------------------------------------------------------------------------- scenes
def _camera_path(frames: int, rng: np.random.Generator) -> np.ndarray:
    """Hand-held forward-facing path (T, 4, 4): ~0.4 units sideways, slight bob, rotations of a few degrees."""
    s = np.linspace(0.0, 1.0, frames)
    ph = rng.uniform(0, 2 * np.pi, size=6)
    deg = np.pi / 180
    x = CAMERA_SWEEP * (s - 0.5) + 0.015 * np.sin(2 * np.pi * 1.3 * s + ph[0])
    y = 0.03 * np.sin(2 * np.pi * 1.0 * s + ph[1])
    z = 0.02 * np.sin(2 * np.pi * 0.7 * s + ph[2])
    yaw = (1.0 - 2.0 * s) * deg + 1.5 * deg * np.sin(2 * np.pi * 0.6 * s + ph[3])
    pitch = 1.5 * deg * np.sin(2 * np.pi * 0.8 * s + ph[4])
    roll = 1.0 * deg * np.sin(2 * np.pi * 0.5 * s + ph[5])
    out = np.empty((frames, 4, 4))
    for i in range(frames):
        rot = rotation([0, 1, 0], yaw[i]) @ rotation([1, 0, 0], pitch[i]) @ rotation([0, 0, 1], roll[i])
        out[i] = rigid(rot, [x[i], y[i], z[i]])
    return out


def _static(frames: int, rot: np.ndarray, trans) -> np.ndarray:
    return np.repeat(rigid(rot, trans)[None], frames, axis=0)


def _moving(s: np.ndarray, pos_fn, axis, angle_fn, rot0: np.ndarray | None = None) -> np.ndarray:
    rot0 = np.eye(3) if rot0 is None else rot0
    return np.stack([rigid(rotation(axis, angle_fn(si)) @ rot0, pos_fn(si)) for si in s])


def _layout(preset: str, frames: int, rng: np.random.Generator) -> list[Primitive]:
    """Primitives of a preset; ``rng`` only jitters colours and placements slightly (seed variation)."""
    s = np.linspace(0.0, 1.0, frames)
    y_ax = [0, 1, 0]

    def col(c):
        return np.clip(np.asarray(c, dtype=np.float64) + rng.uniform(-0.05, 0.05, size=3), 0.15, 0.85)

    def jit(p, amount=0.08):
        return np.asarray(p, dtype=np.float64) + rng.uniform(-amount, amount, size=3) * [1, 1, 0.5]

    def static(name, kind, size, rot, pos, color, **kw):
        return Primitive(name, kind, tuple(size), _static(frames, rot, pos), False, col(color), **kw)

    if preset == "a":
        tex = dict(gain=0.95, style="color", octave_weights=(1.0, 0.9, 0.8, 0.7))
        prims = [
            static("back_plane", "plane", (), np.eye(3), [0, 0, -7.5], [0.55, 0.5, 0.45], salt=1, **tex),
            static("box_left", "box", (0.7, 0.9, 0.5), rotation(y_ax, 0.35), jit([-1.8, -0.6, -4.8]),
                   [0.7, 0.4, 0.35], salt=2, **tex),
            static("box_right", "box", (0.6, 0.5, 0.5), rotation(y_ax, -0.45), jit([1.5, 0.45, -4.1]),
                   [0.35, 0.55, 0.7], salt=3, **tex),
            static("box_low", "box", (1.2, 0.4, 0.6), rotation(y_ax, 0.15), jit([0.3, -1.3, -5.5]),
                   [0.5, 0.65, 0.35], salt=4, **tex),
        ]
        spin = rng.uniform(-0.2, 0.2)
        prims.append(Primitive(
            "cube", "box", (0.3, 0.3, 0.3),
            _moving(s, lambda t: [-0.9 + 1.6 * t, -0.15 + 0.35 * np.sin(np.pi * t), -3.0 + 0.2 * t],
                    [0.4, 1.0, 0.25], lambda t: 0.3 + spin + 1.6 * t),
            True, col([0.8, 0.7, 0.3]), salt=5, **tex))
    elif preset == "b":
        tex = dict(gain=1.1, style="luma", octave_weights=(0.7, 0.9, 1.0, 1.0))
        tilt = rotation(y_ax, -0.35) @ rotation([1, 0, 0], 0.17)
        prims = [
            static("back_plane", "plane", (), tilt, [0.0, 0.0, -7.0], [0.4, 0.42, 0.55], salt=11, **tex),
            static("pillar", "box", (0.35, 1.6, 0.35), rotation(y_ax, 0.6), jit([-2.0, 0.0, -4.0]),
                   [0.6, 0.45, 0.6], salt=12, **tex),
            static("slab", "box", (1.4, 0.25, 0.5), rotation(y_ax, -0.2), jit([0.8, -1.15, -4.6]),
                   [0.45, 0.6, 0.6], salt=13, **tex),
            static("cube_high", "box", (0.35, 0.35, 0.35), rotation(y_ax, 0.7), jit([2.0, 0.95, -4.1]),
                   [0.65, 0.6, 0.4], salt=14, **tex),
            static("box_far", "box", (0.5, 0.4, 0.4), rotation(y_ax, -0.5), jit([-0.6, 1.0, -5.5]),
                   [0.4, 0.5, 0.7], salt=15, **tex),
        ]
        prims.append(Primitive(
            "slab_spinner", "box", (0.45, 0.28, 0.08),
            _moving(s, lambda t: [0.8 - 1.3 * t, 0.25 - 0.3 * t, -3.3 + 0.6 * t], [0.15, 1.0, -0.1],
                    lambda t: -0.5 + 1.5 * t, rotation([1, 0, 0], 0.25)),
            True, col([0.85, 0.35, 0.45]), salt=16, **tex))
    elif preset == "c":
        tex = dict(gain=1.0, style="color", octave_weights=(1.0, 1.0, 0.7, 0.5))
        prims = [
            static("back_plane", "plane", (), rotation([1, 0, 0], -0.14), [0.0, 0.0, -6.5], [0.5, 0.5, 0.5],
                   salt=21, **tex),
            static("box_left", "box", (0.6, 0.6, 0.6), rotation(y_ax, 0.6), jit([-1.5, -0.8, -4.0]),
                   [0.6, 0.55, 0.3], salt=22, **tex),
            static("tower", "box", (0.5, 1.4, 0.5), rotation(y_ax, -0.35), jit([1.5, 0.2, -5.0]),
                   [0.3, 0.45, 0.6], salt=23, **tex),
        ]
        prims.append(Primitive(
            "ball", "sphere", (0.35,),
            _moving(s, lambda t: [0.6 - 0.4 * t, 0.5 - 0.8 * abs(np.sin(np.pi * 1.5 * t)), -3.3],
                    [1.0, 0.3, 0.0], lambda t: 2.5 * t),
            True, col([0.75, 0.4, 0.3]), salt=24, **tex))
        prims.append(Primitive(
            "cube", "box", (0.22, 0.22, 0.22),
            _moving(s, lambda t: [-0.2 - 0.9 * t, -0.45 + 0.2 * t, -2.5], [0.2, 0.3, 1.0],
                    lambda t: 0.4 - 1.8 * t),
            True, col([0.35, 0.7, 0.45]), salt=25, **tex))
    else:
        raise ValueError(f"unknown preset {preset!r}; expected one of {list(PRESETS)}")
    return prims


def _nominal_depth(prim: Primitive, c2w0: np.ndarray) -> float:
    """Smallest depth of the primitive's origin over the clip in camera 0 (planes: depth on the optical axis)."""
    if prim.kind == "plane":
        m = prim.obj2world[0]
        normal, point = m[:3, 2], m[:3, 3]
        axis = -c2w0[:3, 2]
        return float(np.dot(point - c2w0[:3, 3], normal) / np.dot(axis, normal))
    centers = prim.obj2world[:, :3, 3]
    return float(np.min(-(centers - c2w0[:3, 3]) @ c2w0[:3, 2]))


def build_scene(preset: str, frames: int, width: int, height: int, seed: int) -> Scene:
    """The scene of ``preset`` for a clip of ``frames`` frames at full resolution (width, height)."""
    rng = np.random.default_rng([seed, PRESETS.index(preset) if preset in PRESETS else 99])
    prims = _layout(preset, frames, rng)
    c2w = _camera_path(frames, rng)
    focal = FOCAL_PER_WIDTH * width
    for p in prims:
        p.salt = int(p.salt + 1000 * seed)
        p.cell = TEXEL_PIXELS * _nominal_depth(p, c2w[0]) / (focal / 2)
    return Scene(preset, seed, width, height, focal, c2w, prims)
