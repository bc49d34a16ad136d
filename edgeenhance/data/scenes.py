"""Procedural scenes rendered in linear HDR radiance by vectorized ray casting.

A scene is a textured ground plane, a sky with a sun disk, spheres and boxes with diffuse and
specular shading, lit by a sun (day) or a lamp (night) whose position and power are controllable,
with hard shadows. Everything is deterministic by seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Light:
    kind: str  # "sun" (directional) or "lamp" (point, inverse-square falloff)
    direction: np.ndarray  # sun: unit vector towards the sun; lamp: position
    color: np.ndarray
    power: float  # sun irradiance, or lamp intensity


@dataclass
class SceneParams:
    seed: int
    sky_zenith: np.ndarray
    sky_horizon: np.ndarray
    sky_power: float
    light: Light
    ground_colors: tuple[np.ndarray, np.ndarray]
    ground_pattern: str
    ground_scale: float
    spheres: list = field(default_factory=list)  # (center, radius, albedo, specular, shininess, stripes)
    boxes: list = field(default_factory=list)  # (lo, hi, albedo, specular)
    cam_height: float = 1.6
    cam_pitch: float = -0.12
    cam_yaw: float = 0.0
    fov: float = 60.0


def random_scene(seed: int, night: bool | None = None) -> SceneParams:
    """Sample a scene. ``night`` picks a lamp-lit scene; None chooses at random (25%)."""
    rng = np.random.default_rng(seed)
    if night is None:
        night = rng.random() < 0.25
    warm = rng.uniform(0.0, 1.0)
    light_color = np.array([1.0, 0.92 - 0.1 * warm, 0.82 - 0.25 * warm], np.float32)
    if night:
        pos = np.array([rng.uniform(-3, 3), rng.uniform(2.5, 5), rng.uniform(5, 12)], np.float32)
        light = Light("lamp", pos, light_color, float(rng.uniform(20, 80)))
        sky_power = float(rng.uniform(0.002, 0.02))
        zenith, horizon = np.array([0.02, 0.03, 0.08]), np.array([0.06, 0.05, 0.08])
    else:
        elev = rng.uniform(0.15, 1.2)
        azim = rng.uniform(-1.2, 1.2)
        d = np.array([np.sin(azim) * np.cos(elev), np.sin(elev), np.cos(azim) * np.cos(elev)], np.float32)
        light = Light("sun", d / np.linalg.norm(d), light_color, float(rng.uniform(2.0, 6.0)))
        sky_power = float(rng.uniform(0.3, 1.0))
        overcast = rng.random() < 0.3
        zenith = np.array([0.55, 0.6, 0.65]) if overcast else np.array([0.18, 0.35, 0.85])
        horizon = np.array([0.8, 0.8, 0.82]) if overcast else np.array([0.7, 0.8, 0.95])
    palette = rng.uniform(0.05, 0.8, size=(2, 3)).astype(np.float32)
    spheres = []
    for _ in range(rng.integers(2, 7)):
        r = rng.uniform(0.3, 1.4)
        c = np.array([rng.uniform(-5, 5), r, rng.uniform(4, 16)], np.float32)
        spheres.append((c, float(r), rng.uniform(0.05, 0.9, 3).astype(np.float32), float(rng.uniform(0, 0.6)),
                        float(rng.uniform(8, 120)), int(rng.integers(0, 3))))
    boxes = []
    for _ in range(rng.integers(0, 3)):
        w, h, dp = rng.uniform(0.8, 3), rng.uniform(0.8, 4), rng.uniform(0.8, 3)
        x, z = rng.uniform(-7, 7), rng.uniform(7, 20)
        boxes.append((np.array([x - w / 2, 0, z - dp / 2], np.float32), np.array([x + w / 2, h, z + dp / 2], np.float32),
                      rng.uniform(0.05, 0.9, 3).astype(np.float32), float(rng.uniform(0, 0.3))))
    return SceneParams(
        seed=seed, sky_zenith=np.asarray(zenith, np.float32), sky_horizon=np.asarray(horizon, np.float32),
        sky_power=sky_power, light=light, ground_colors=(palette[0], palette[1]),
        ground_pattern=str(rng.choice(["checker", "stripes", "noise", "tiles"])), ground_scale=float(rng.uniform(0.5, 3)),
        spheres=spheres, boxes=boxes, cam_height=float(rng.uniform(1.0, 2.5)), cam_pitch=float(rng.uniform(-0.3, 0.05)),
        cam_yaw=float(rng.uniform(-0.3, 0.3)), fov=float(rng.uniform(50, 75)),
    )


def _value_noise(x: np.ndarray, z: np.ndarray, seed: int) -> np.ndarray:
    """Smooth 2-D value noise in [0, 1] (two octaves) from a hashed lattice."""
    out = np.zeros_like(x)
    for octave, amp in ((1.0, 0.65), (3.7, 0.35)):
        xs, zs = x * octave, z * octave
        xi, zi = np.floor(xs), np.floor(zs)
        fx, fz = xs - xi, zs - zi
        fx, fz = fx * fx * (3 - 2 * fx), fz * fz * (3 - 2 * fz)

        def h(a, b):
            v = np.sin(a * 127.1 + b * 311.7 + seed * 0.1 + octave) * 43758.5453
            return v - np.floor(v)

        top = h(xi, zi) * (1 - fx) + h(xi + 1, zi) * fx
        bot = h(xi, zi + 1) * (1 - fx) + h(xi + 1, zi + 1) * fx
        out += amp * (top * (1 - fz) + bot * fz)
    return out


def _ray_dirs(p: SceneParams, h: int, w: int) -> np.ndarray:
    aspect = w / h
    t = np.tan(np.radians(p.fov) / 2)
    ys = (1 - 2 * (np.arange(h) + 0.5) / h) * t
    xs = (2 * (np.arange(w) + 0.5) / w - 1) * t * aspect
    X, Y = np.meshgrid(xs, ys)
    d = np.stack([X, Y, np.ones_like(X)], -1)
    cp, sp, cy, sy = np.cos(p.cam_pitch), np.sin(p.cam_pitch), np.cos(p.cam_yaw), np.sin(p.cam_yaw)
    rot_pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    rot_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    d = d @ (rot_yaw @ rot_pitch).T
    return (d / np.linalg.norm(d, axis=-1, keepdims=True)).reshape(-1, 3).astype(np.float32)


def _hit_sphere(o, d, c, r):
    oc = o - c
    b = (d * oc).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - r * r)
    sq = np.sqrt(np.maximum(disc, 0))
    t = -b - sq
    t = np.where(t > 1e-3, t, -b + sq)
    return np.where((disc > 0) & (t > 1e-3), t, np.inf)


def _hit_box(o, d, lo, hi):
    inv = 1.0 / np.where(np.abs(d) < 1e-9, 1e-9, d)
    t1, t2 = (lo - o) * inv, (hi - o) * inv
    tmin, tmax = np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)
    t = np.where(tmin > 1e-3, tmin, tmax)
    return np.where((tmax >= tmin) & (t > 1e-3), t, np.inf)


def _box_normal(pnt, lo, hi):
    c, half = (lo + hi) / 2, (hi - lo) / 2
    q = (pnt - c) / half
    axis = np.abs(q).argmax(-1)
    n = np.zeros_like(pnt)
    n[np.arange(len(pnt)), axis] = np.sign(q[np.arange(len(pnt)), axis])
    return n


def _occluded(p: SceneParams, pts: np.ndarray, to_light: np.ndarray, dist: np.ndarray) -> np.ndarray:
    blocked = np.zeros(len(pts), bool)
    o = pts + to_light * 1e-3
    for c, r, *_ in p.spheres:
        blocked |= _hit_sphere(o, to_light, c, r) < dist
    for lo, hi, *_ in p.boxes:
        blocked |= _hit_box(o, to_light, lo, hi) < dist
    return blocked


def render(p: SceneParams, size: tuple[int, int] = (256, 256)) -> np.ndarray:
    """Render linear HDR radiance, (H, W, 3) float32."""
    h, w = size
    d = _ray_dirs(p, h, w)
    n_rays = len(d)
    o = np.array([0.0, p.cam_height, 0.0], np.float32)
    O = np.broadcast_to(o, d.shape)
    t_best = np.full(n_rays, np.inf, np.float32)
    obj = np.full(n_rays, -1)  # -1 sky, 0 ground, 1+i sphere i, 100+j box j
    t_ground = np.where(d[:, 1] < -1e-6, -o[1] / np.minimum(d[:, 1], -1e-6), np.inf)
    t_best, obj = np.minimum(t_best, t_ground), np.where(t_ground < t_best, 0, obj)
    for i, (c, r, *_) in enumerate(p.spheres):
        t = _hit_sphere(O, d, c, r)
        obj, t_best = np.where(t < t_best, 1 + i, obj), np.minimum(t, t_best)
    for j, (lo, hi, *_) in enumerate(p.boxes):
        t = _hit_box(O, d, lo, hi)
        obj, t_best = np.where(t < t_best, 100 + j, obj), np.minimum(t, t_best)

    radiance = np.zeros((n_rays, 3), np.float32)
    sky = obj < 0
    up = np.clip(d[sky, 1], 0, 1)[:, None]
    radiance[sky] = p.sky_power * ((1 - up) * p.sky_horizon + up * p.sky_zenith)
    if p.light.kind == "sun":
        cosang = d[sky] @ p.light.direction
        disk = np.clip((cosang - 0.9990) / 0.0004, 0, 1)[:, None]
        halo = (np.clip(cosang, 0, 1) ** 64)[:, None] * 0.3
        radiance[sky] += p.light.power * p.light.color * (disk * 60.0 + halo)

    hit = ~sky
    pts = o + d[hit] * t_best[hit, None]
    ids = obj[hit]
    normal = np.zeros_like(pts)
    albedo = np.zeros_like(pts)
    spec = np.zeros(len(pts), np.float32)
    shin = np.full(len(pts), 16.0, np.float32)
    g = ids == 0
    normal[g] = (0, 1, 0)
    gx, gz = pts[g, 0] * p.ground_scale, pts[g, 2] * p.ground_scale
    if p.ground_pattern == "checker":
        m = ((np.floor(gx) + np.floor(gz)) % 2)
    elif p.ground_pattern == "stripes":
        m = (np.sin(gx * 2.0) > 0).astype(np.float32)
    elif p.ground_pattern == "tiles":
        m = ((gx % 1 < 0.92) & (gz % 1 < 0.92)).astype(np.float32)
    else:
        m = _value_noise(gx, gz, p.seed)
    grain = 0.85 + 0.3 * _value_noise(gx * 9, gz * 9, p.seed + 1)
    albedo[g] = ((1 - m)[:, None] * p.ground_colors[0] + m[:, None] * p.ground_colors[1]) * grain[:, None]
    spec[g] = 0.05
    for i, (c, r, alb, ks, sh, stripes) in enumerate(p.spheres):
        s = ids == 1 + i
        n = (pts[s] - c) / r
        normal[s] = n
        a = np.broadcast_to(alb, n.shape).copy()
        if stripes:
            band = (np.sin(n[:, 1] * (6 + 6 * stripes)) > 0)[:, None]
            a = np.where(band, a, 1 - a * 0.8)
        albedo[s], spec[s], shin[s] = a, ks, sh
    for j, (lo, hi, alb, ks) in enumerate(p.boxes):
        s = ids == 100 + j
        normal[s] = _box_normal(pts[s], lo, hi)
        win = (np.sin(pts[s, 1] * 9) > 0.3) & (np.sin(pts[s, 0] * 7 + pts[s, 2] * 7) > 0.2)
        albedo[s] = np.where(win[:, None], alb * 0.35, alb)
        spec[s] = np.where(win, 0.6, ks)

    if p.light.kind == "sun":
        to_l = np.broadcast_to(p.light.direction, pts.shape)
        dist = np.full(len(pts), np.inf, np.float32)
        irr = np.full(len(pts), p.light.power, np.float32)
    else:
        v = p.light.direction - pts
        dist = np.linalg.norm(v, axis=-1)
        to_l = v / dist[:, None]
        irr = p.light.power / (dist**2 + 1.0)
    ndl = np.clip((normal * to_l).sum(-1), 0, None)
    lit = ~_occluded(p, pts, to_l, dist)
    view = -d[hit]
    half = to_l + view
    half /= np.linalg.norm(half, axis=-1, keepdims=True)
    ndh = np.clip((normal * half).sum(-1), 0, None)
    direct = (irr * ndl * lit)[:, None] * p.light.color
    ambient = p.sky_power * (0.25 + 0.35 * (0.5 + 0.5 * normal[:, 1:2])) * (p.sky_horizon + p.sky_zenith) / 2
    specular = (spec * ndh**shin * irr * lit * (ndl > 0))[:, None] * p.light.color
    fog = np.exp(-t_best[hit] / 80.0)[:, None]
    color = (albedo / np.pi * 3.0 * (direct + ambient * np.pi) + specular) * fog + (1 - fog) * p.sky_power * p.sky_horizon
    radiance[hit] = color
    return radiance.reshape(h, w, 3).astype(np.float32)
