"""Procedural scenes rendered in linear HDR radiance by vectorized ray casting.

Three kinds of scene, deterministic by seed:

- day: a textured ground, a blue (sometimes overcast) sky with a sun disk, saturated and neutral
  spheres and buildings, lit by the sun with hard shadows and a sky fill 2-3 stops below sunlight;
- night: a street lit by a few lamps (visible emitters far brighter than anything they light, light
  pools, hard shadows, glare), lit windows, a near-black sky and almost no fill;
- indoor: a closed room lit by a few lamps, with a weak inter-reflection fill and no sky.

``SceneParams.light`` is the controllable light (the sun, or the first lamp); ``lamps`` are the others.
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
    radius: float = 0.0  # lamp: radius of its visible emitter (0: not drawn)
    spot: float = -1.0  # lamp: cosine of its cone's half-angle around straight down (-1: all round)


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
    boxes: list = field(default_factory=list)  # (lo, hi, albedo, specular, has_windows)
    cam_height: float = 1.6
    cam_pitch: float = -0.12
    cam_yaw: float = 0.0
    fov: float = 60.0
    lamps: list = field(default_factory=list)  # further Light("lamp", ...)
    fill: float = 0.3  # ambient (sky) irradiance, tinted by the sky colours
    bounce: float = 0.0  # indoor inter-reflection: uniform fill as a fraction of the lamps' total power
    fog: float = 200.0  # distance at which the air hides 63% of a surface (inf: clear)
    windows_lit: float = 0.0  # fraction of building windows that glow
    window_power: float = 0.0  # radiance of a lit window
    room: tuple | None = None  # (lo, hi, wall albedo, ceiling albedo): the camera is inside it
    clouds: float = 0.0  # fraction of the sky covered by clouds


SKY, GROUND, ROOM, EMITTER = -1, 0, 200, 300
SODIUM, WARM, NEUTRAL, LED = (np.array(c, np.float32) for c in
                              ((1.0, 0.55, 0.18), (1.0, 0.78, 0.5), (1.0, 0.9, 0.78), (0.82, 0.9, 1.0)))


def _hsv(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float], hue=None) -> np.ndarray:
    """A linear reflectance from hue/saturation/value ranges."""
    h = rng.random() if hue is None else hue
    s, v = rng.uniform(*sat), rng.uniform(*val)
    base = np.clip(np.abs((h * 6 + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1)
    return (v * (1 - s + s * base)).astype(np.float32)


def _material(rng: np.random.Generator) -> np.ndarray:
    """Objects: 40% near-neutral (concrete, paint, metal), the rest strongly coloured."""
    if rng.random() < 0.4:
        return _hsv(rng, (0.0, 0.15), (0.04, 0.7))
    return _hsv(rng, (0.55, 0.95), (0.12, 0.75))


def _ground(rng: np.random.Generator, indoor: bool) -> tuple[np.ndarray, np.ndarray]:
    kind = rng.integers(0, 5)
    if indoor:  # wood, stone, carpet
        a = [_hsv(rng, (0.4, 0.75), (0.1, 0.45), hue=rng.uniform(0.04, 0.1)),
             _hsv(rng, (0.0, 0.1), (0.15, 0.6)), _material(rng)][kind % 3]
    else:  # asphalt, grass, concrete, sand, painted
        a = [_hsv(rng, (0.0, 0.1), (0.04, 0.1)), _hsv(rng, (0.6, 0.85), (0.06, 0.25), hue=rng.uniform(0.2, 0.32)),
             _hsv(rng, (0.0, 0.1), (0.2, 0.45)), _hsv(rng, (0.35, 0.55), (0.25, 0.5), hue=rng.uniform(0.08, 0.12)),
             _material(rng)][kind]
    b = a * np.float32(rng.uniform(0.4, 0.8)) if rng.random() < 0.6 else _material(rng)
    return a, b


def random_scene(seed: int, night: bool | None = None) -> SceneParams:
    """Sample a scene. ``night`` picks a dark lamp-lit scene (a street at night or a room);
    None chooses at random (35%)."""
    rng = np.random.default_rng(seed)
    if night is None:
        night = rng.random() < 0.35
    indoor = bool(night and rng.random() < 0.5)
    room = None
    lamps: list[Light] = []
    boxes = []
    windows_lit = window_power = bounce = 0.0
    if not night:
        elev = rng.uniform(0.12, 1.1)
        azim = rng.uniform(-1.3, 1.3)
        d = np.array([np.sin(azim) * np.cos(elev), np.sin(elev), np.cos(azim) * np.cos(elev)], np.float32)
        low = float(np.clip(1.0 - elev / 0.6, 0, 1))  # low sun: warmer
        sun_color = np.array([1.0, 0.93 - 0.18 * low, 0.85 - 0.4 * low], np.float32)
        overcast = rng.random() < 0.15
        power = float(rng.uniform(0.4, 1.0) if overcast else rng.uniform(3.0, 7.0))
        light = Light("sun", d / np.linalg.norm(d), sun_color, power)
        clouds = 0.0
        if overcast:
            zenith, horizon = np.array([0.62, 0.66, 0.72]), np.array([0.85, 0.86, 0.88])
            sky_power, fill = float(rng.uniform(0.8, 1.2)), float(rng.uniform(0.8, 1.2))
        else:
            zenith = np.array([0.06, 0.17, 0.75]) * rng.uniform(0.8, 1.2, 3)
            horizon = np.array([0.5, 0.64, 0.9])
            # Clear sky: about a tenth of a sunlit white's radiance, and shade 2-3 stops under sunlight.
            sky_power = power * float(rng.uniform(0.04, 0.08))
            fill = power * float(rng.uniform(0.015, 0.035))
            clouds = float(rng.uniform(0.0, 0.6))
        fog = float(rng.uniform(150, 500))
        cam_height, pitch = float(rng.uniform(1.0, 2.5)), float(rng.uniform(-0.3, 0.05))
    else:
        zenith, horizon = np.array([0.02, 0.04, 0.12]), np.array([0.09, 0.07, 0.08])
        sky_power, fill, clouds = float(rng.uniform(0.002, 0.01)), float(rng.uniform(0.0005, 0.004)), 0.0
        fog = float(rng.uniform(50, 150))
        cam_height, pitch = float(rng.uniform(1.0, 2.2)), float(rng.uniform(-0.25, 0.08))
        if indoor:
            wdt, depth, hgt = rng.uniform(6, 12), rng.uniform(9, 18), rng.uniform(2.6, 3.8)
            cx = rng.uniform(-1, 1)
            room = (np.array([cx - wdt / 2, -0.01, -0.8], np.float32), np.array([cx + wdt / 2, hgt, depth], np.float32),
                    _hsv(rng, (0.0, 0.35), (0.25, 0.75)), _hsv(rng, (0.0, 0.1), (0.5, 0.8)))
            bounce = float(rng.uniform(0.002, 0.008))
            fill, fog = 0.0, np.inf
            cam_height = min(cam_height, float(hgt) - 0.4)
            for k in range(int(rng.integers(2, 5))):
                ceiling = rng.random() < 0.5
                y = hgt - rng.uniform(0.25, 0.6) if ceiling else rng.uniform(0.8, 1.9)
                pos = np.array([rng.uniform(cx - wdt / 2 + 0.4, cx + wdt / 2 - 0.4), y, rng.uniform(2.0, depth - 0.5)],
                               np.float32)
                color = [WARM, NEUTRAL, LED][int(rng.integers(0, 3))] if k == 0 or rng.random() < 0.5 else lamps[0].color
                spot = float(rng.uniform(0.2, 0.7)) if ceiling and rng.random() < 0.5 else -1.0
                lamps.append(Light("lamp", pos, color, float(rng.uniform(3, 15)), float(rng.uniform(0.06, 0.18)), spot))
        else:
            windows_lit, window_power = float(rng.uniform(0.05, 0.5)), float(rng.uniform(0.2, 2.0))
            for k in range(int(rng.integers(2, 6))):
                street = rng.random() < 0.7
                y = rng.uniform(3.0, 5.5) if street else rng.uniform(1.5, 4.0)
                pos = np.array([rng.uniform(-7, 7), y, rng.uniform(3, 22)], np.float32)
                color = [SODIUM, WARM, NEUTRAL, LED][int(rng.integers(0, 4))]
                r = float(rng.uniform(0.1, 0.25))
                spot = float(rng.uniform(0.1, 0.6)) if street and rng.random() < 0.6 else -1.0
                lamps.append(Light("lamp", pos, color, float(rng.uniform(15, 70)), r, spot))
                if street:  # the pole stops under the lamp head so it casts no shadow from its own lamp
                    boxes.append((pos - np.array([0.06, y, 0.06], np.float32), pos + np.array([0.06, -r - 0.05, 0.06], np.float32),
                                  _hsv(rng, (0.0, 0.1), (0.05, 0.3)), 0.3, False))
        light = lamps.pop(0)
    gc = _ground(rng, indoor)
    # Objects: inside the room, or scattered along a street.
    if room is not None:
        xlo, xhi, zlo, zhi, smax = float(room[0][0]) + 0.5, float(room[1][0]) - 0.5, 2.0, float(room[1][2]) - 0.8, 0.7
    else:
        xlo, xhi, zlo, zhi, smax = -5.0, 5.0, 4.0, 16.0, 1.4
    spheres = []
    for _ in range(rng.integers(2, 7)):
        r = rng.uniform(0.25, smax)
        c = np.array([rng.uniform(xlo, xhi), r, rng.uniform(zlo, zhi)], np.float32)
        spheres.append((c, float(r), _material(rng), float(rng.uniform(0, 0.6)), float(rng.uniform(8, 120)),
                        int(rng.integers(0, 3))))
    for _ in range(rng.integers(0, 3) if room is None else rng.integers(1, 4)):
        if room is None:  # buildings
            w, h, dp = rng.uniform(0.8, 3), rng.uniform(0.8, 5), rng.uniform(0.8, 3)
            x, z = rng.uniform(-7, 7), rng.uniform(7, 20)
        else:  # furniture
            w, h, dp = rng.uniform(0.5, 2.0), rng.uniform(0.4, 1.8), rng.uniform(0.4, 1.5)
            x, z = rng.uniform(xlo, xhi), rng.uniform(zlo, zhi)
        boxes.append((np.array([x - w / 2, 0, z - dp / 2], np.float32), np.array([x + w / 2, h, z + dp / 2], np.float32),
                      _material(rng), float(rng.uniform(0, 0.3)), room is None))
    return SceneParams(
        seed=seed, sky_zenith=np.asarray(zenith, np.float32), sky_horizon=np.asarray(horizon, np.float32),
        sky_power=sky_power, light=light, ground_colors=gc,
        ground_pattern=str(rng.choice(["checker", "stripes", "noise", "tiles"])), ground_scale=float(rng.uniform(0.5, 3)),
        spheres=spheres, boxes=boxes, cam_height=cam_height, cam_pitch=pitch,
        cam_yaw=float(rng.uniform(-0.3, 0.3)), fov=float(rng.uniform(50, 75)), lamps=lamps, fill=fill,
        bounce=bounce, fog=fog, windows_lit=windows_lit, window_power=window_power, room=room, clouds=clouds,
    )


def _hash(a: np.ndarray, b: np.ndarray, seed: float) -> np.ndarray:
    v = np.sin(a * 127.1 + b * 311.7 + seed * 0.1) * 43758.5453
    return v - np.floor(v)


def _value_noise(x: np.ndarray, z: np.ndarray, seed: int) -> np.ndarray:
    """Smooth 2-D value noise in [0, 1] (two octaves) from a hashed lattice."""
    out = np.zeros_like(x)
    for octave, amp in ((1.0, 0.65), (3.7, 0.35)):
        xs, zs = x * octave, z * octave
        xi, zi = np.floor(xs), np.floor(zs)
        fx, fz = xs - xi, zs - zi
        fx, fz = fx * fx * (3 - 2 * fx), fz * fz * (3 - 2 * fz)
        s = seed + octave * 10
        top = _hash(xi, zi, s) * (1 - fx) + _hash(xi + 1, zi, s) * fx
        bot = _hash(xi, zi + 1, s) * (1 - fx) + _hash(xi + 1, zi + 1, s) * fx
        out += amp * (top * (1 - fz) + bot * fz)
    return out


def _ray_dirs(p: SceneParams, h: int, w: int) -> list[np.ndarray]:
    """Unit ray directions, as x, y, z components of length h * w (row-major)."""
    aspect = w / h
    t = np.tan(np.radians(p.fov) / 2)
    ys = ((1 - 2 * (np.arange(h) + 0.5) / h) * t).astype(np.float32)
    xs = ((2 * (np.arange(w) + 0.5) / w - 1) * t * aspect).astype(np.float32)
    X, Y = (a.ravel() for a in np.meshgrid(xs, ys))
    cp, sp, cy, sy = np.cos(p.cam_pitch), np.sin(p.cam_pitch), np.cos(p.cam_yaw), np.sin(p.cam_yaw)
    rot_pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    rot_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot = (rot_yaw @ rot_pitch).astype(np.float32)
    # Component-wise, not a matmul: tiny BLAS calls stall when other processes hold the cores.
    d = [X * rot[k, 0] + Y * rot[k, 1] + rot[k, 2] for k in range(3)]
    inv_norm = 1 / np.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
    return [c * inv_norm for c in d]


# Ray tests take origin and direction as separate x, y, z components (scalars or arrays): numpy's
# reductions over a trailing axis of 3 were most of the old render time.

def _hit_sphere(o, d, c, r):
    """Distance along each ray to the sphere (inf: miss)."""
    ocx, ocy, ocz = o[0] - c[0], o[1] - c[1], o[2] - c[2]
    b = d[0] * ocx + d[1] * ocy + d[2] * ocz
    disc = b * b - (ocx * ocx + ocy * ocy + ocz * ocz - r * r)
    sq = np.sqrt(np.maximum(disc, 0))
    t = -b - sq
    t = np.where(t > 1e-3, t, -b + sq)
    return np.where((disc > 0) & (t > 1e-3), t, np.inf)


def _hit_box(o, inv, lo, hi, exit_only: bool = False):
    """Distance along each ray to the box, given the direction's reciprocal ``inv``; ``exit_only``:
    where the ray leaves it (seen from inside)."""
    tlo = [(lo[k] - o[k]) * inv[k] for k in range(3)]
    thi = [(hi[k] - o[k]) * inv[k] for k in range(3)]
    tmax = np.minimum(np.minimum(np.maximum(tlo[0], thi[0]), np.maximum(tlo[1], thi[1])), np.maximum(tlo[2], thi[2]))
    if exit_only:
        return tmax
    tmin = np.maximum(np.maximum(np.minimum(tlo[0], thi[0]), np.minimum(tlo[1], thi[1])), np.minimum(tlo[2], thi[2]))
    t = np.where(tmin > 1e-3, tmin, tmax)
    return np.where((tmax >= tmin) & (t > 1e-3), t, np.inf)


def _inv(d):
    return [1.0 / np.where(np.abs(c) < 1e-9, np.float32(1e-9), c) for c in d]


def _box_normal(pnt, lo, hi):
    c, half = (lo + hi) / 2, (hi - lo) / 2
    q = (pnt - c) / half
    axis = np.abs(q).argmax(-1)
    n = np.zeros_like(pnt)
    n[np.arange(len(pnt)), axis] = np.sign(q[np.arange(len(pnt)), axis])
    return n


def _occluded(p: SceneParams, pts, to_light, dist) -> np.ndarray:
    """Shadow rays: is anything between each point and the light (emitters and room walls excluded)?"""
    o = [pts[k] + to_light[k] * 1e-3 for k in range(3)]
    blocked = np.zeros(len(pts[0]), bool)
    for c, r, *_ in p.spheres:
        # The points are outside every sphere, so it blocks when it lies ahead (b < 0), the line
        # meets it (b^2 > cc) and the entry point comes before the light.
        oc = [o[k] - c[k] for k in range(3)]
        b = to_light[0] * oc[0] + to_light[1] * oc[1] + to_light[2] * oc[2]
        cc = oc[0] * oc[0] + oc[1] * oc[1] + oc[2] * oc[2] - r * r
        cand = np.flatnonzero((b < 0) & (b * b > cc))
        if len(cand):
            bc = b[cand]
            blocked[cand] |= -bc - np.sqrt(bc * bc - cc[cand]) < dist[cand]
    if p.boxes:
        inv = _inv(to_light)
        for lo, hi, *_ in p.boxes:
            blocked |= _hit_box(o, inv, lo, hi) < dist
    return blocked


def _tint(e: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """sum_l e[l] * colors[l]: (L, M) x (L, 3) -> (M, 3), without BLAS (see _ray_dirs)."""
    out = np.empty((e.shape[1], 3), np.float32)
    for c in range(3):
        out[:, c] = sum(e[li] * colors[li, c] for li in range(len(e)))
    return out


def _smoothstep(a, b, x):
    t = np.clip((x - a) / (b - a), 0, 1)
    return t * t * (3 - 2 * t)


def render(p: SceneParams, size: tuple[int, int] = (256, 256)) -> np.ndarray:
    """Render linear HDR radiance, (H, W, 3) float32."""
    h, w = size
    d = _ray_dirs(p, h, w)
    inv = _inv(d)
    n_rays = len(d[0])
    o = np.array([0.0, p.cam_height, 0.0], np.float32)
    lights = [p.light, *p.lamps]
    t_best = np.full(n_rays, np.inf, np.float32)
    obj = np.full(n_rays, SKY, np.int32)

    def closer(t, ident):
        m = t < t_best
        t_best[m], obj[m] = t[m], ident

    if p.room is not None:
        closer(_hit_box(o, inv, p.room[0], p.room[1], exit_only=True), ROOM)
    closer(np.where(d[1] < -1e-6, -o[1] / np.minimum(d[1], -1e-6), np.inf), GROUND)
    for i, (c, r, *_) in enumerate(p.spheres):
        closer(_hit_sphere(o, d, c, r), 1 + i)
    for j, (lo, hi, *_) in enumerate(p.boxes):
        closer(_hit_box(o, inv, lo, hi), 100 + j)
    for k, lt in enumerate(lights):
        if lt.kind == "lamp" and lt.radius > 0:
            closer(_hit_sphere(o, d, lt.direction, lt.radius), EMITTER + k)

    radiance = np.zeros((n_rays, 3), np.float32)
    sky = np.flatnonzero(obj == SKY)
    up = np.clip(d[1][sky], 0, 1)[:, None]
    radiance[sky] = p.sky_power * ((1 - up) * p.sky_horizon + up * p.sky_zenith)
    if p.clouds > 0:  # noise on a cloud layer above the camera, thinning towards the horizon
        upc = np.maximum(d[1][sky], 0.02)
        cov = _value_noise(d[0][sky] / upc * 0.8, d[2][sky] / upc * 0.8, p.seed + 3)
        cloud = _smoothstep(1.0 - p.clouds, 1.15 - p.clouds, cov) * np.clip(upc * 8, 0, 1)
        shade = 0.75 + 0.5 * _value_noise(d[0][sky] / upc * 3, d[2][sky] / upc * 3, p.seed + 4)
        white = p.sky_power * np.float32(np.mean(p.sky_horizon)) * 1.6 * shade
        radiance[sky] = radiance[sky] * (1 - cloud)[:, None] + (cloud * white)[:, None]
    if p.light.kind == "sun":
        sd = p.light.direction
        cosang = d[0][sky] * sd[0] + d[1][sky] * sd[1] + d[2][sky] * sd[2]
        disk = np.clip((cosang - 0.9990) / 0.0004, 0, 1)[:, None]
        halo = (np.clip(cosang, 0, 1) ** 256)[:, None] * 0.15 + (np.clip(cosang, 0, 1) ** 16)[:, None] * 0.02
        radiance[sky] += p.light.power * p.light.color * (disk * 200.0 + halo)
    for k, lt in enumerate(lights):
        em = obj == EMITTER + k
        if em.any():  # a lamp's radiance: its intensity over its disc, far above what it lights
            radiance[em] = lt.power / (np.pi * lt.radius**2) * lt.color

    hit = np.flatnonzero((obj >= 0) & (obj < EMITTER))
    ids, th = obj[hit], t_best[hit]
    dh = [c[hit] for c in d]
    pts = [o[k] + dh[k] * th for k in range(3)]
    m = len(hit)
    normal = np.zeros((m, 3), np.float32)
    albedo = np.zeros((m, 3), np.float32)
    emission = np.zeros((m, 3), np.float32)
    spec = np.zeros(m, np.float32)
    shin = np.full(m, 16.0, np.float32)
    g = ids == GROUND
    normal[g, 1] = 1
    gx, gz = pts[0][g] * p.ground_scale, pts[2][g] * p.ground_scale
    if p.ground_pattern == "checker":
        mk = ((np.floor(gx) + np.floor(gz)) % 2)
    elif p.ground_pattern == "stripes":
        mk = (np.sin(gx * 2.0) > 0).astype(np.float32)
    elif p.ground_pattern == "tiles":
        mk = ((gx % 1 < 0.92) & (gz % 1 < 0.92)).astype(np.float32)
    else:
        mk = _value_noise(gx, gz, p.seed)
    grain = 0.8 + 0.4 * _value_noise(gx * 9, gz * 9, p.seed + 1)
    albedo[g] = ((1 - mk)[:, None] * p.ground_colors[0] + mk[:, None] * p.ground_colors[1]) * grain[:, None]
    spec[g] = 0.05
    for i, (c, r, alb, ks, sh, stripes) in enumerate(p.spheres):
        s = ids == 1 + i
        n = np.stack([(pts[k][s] - c[k]) / r for k in range(3)], -1)
        normal[s] = n
        a = np.broadcast_to(alb, n.shape)
        if stripes:
            band = (np.sin(n[:, 1] * (6 + 6 * stripes)) > 0)[:, None]
            a = np.where(band, a, 1 - a * 0.8)
        albedo[s], spec[s], shin[s] = a, ks, sh
    for j, (lo, hi, alb, ks, windows) in enumerate(p.boxes):
        s = np.flatnonzero(ids == 100 + j)
        if not len(s):
            continue
        ps = np.stack([pts[k][s] for k in range(3)], -1)
        normal[s] = _box_normal(ps, lo, hi)
        if not windows:
            albedo[s], spec[s] = alb, ks
            continue
        wy, wu = ps[:, 1] * 9, (ps[:, 0] + ps[:, 2]) * 7
        win = (np.sin(wy) > 0.3) & (np.sin(wu) > 0.2) & (normal[s, 1] == 0)
        albedo[s] = np.where(win[:, None], alb * 0.35, alb)
        spec[s] = np.where(win, 0.6, ks)
        if p.windows_lit > 0:
            row, col = np.floor(wy / (2 * np.pi)), np.floor(wu / (2 * np.pi))
            hv = _hash(row + 17 * j, col, p.seed)
            glow = win & (hv < p.windows_lit)
            emission[s[glow]] = p.window_power * (0.3 + 0.7 * hv[glow] / p.windows_lit)[:, None] * WARM
    if p.room is not None:
        s = np.flatnonzero(ids == ROOM)
        lo, hi, wall, ceiling = p.room
        ps = np.stack([pts[k][s] for k in range(3)], -1)
        nr = -_box_normal(ps, lo, hi)  # seen from inside
        normal[s] = nr
        wall_tex = 0.85 + 0.3 * _value_noise(ps[:, 0] * 3 + ps[:, 2] * 3, ps[:, 1] * 3, p.seed + 2)
        albedo[s] = np.where((nr[:, 1] < -0.5)[:, None], ceiling, wall * wall_tex[:, None])
        spec[s] = 0.02

    # Direct light: one shadow ray per light and lit point.
    view = [-c for c in dh]
    # Per-light irradiance and highlight, tinted by the light colours in one product at the end.
    diffuse = np.zeros((len(lights), m), np.float32)
    specular = np.zeros((len(lights), m), np.float32)
    nx, ny, nz = (np.ascontiguousarray(normal[:, k]) for k in range(3))
    for li, lt in enumerate(lights):
        if lt.kind == "sun":
            tl = [np.float32(v) for v in lt.direction]
            ndl = nx * tl[0] + ny * tl[1] + nz * tl[2]
            act = np.flatnonzero(ndl > 0)
            tl = [np.full(len(act), v, np.float32) for v in tl]
            dist = np.full(len(act), np.inf, np.float32)
            irr = np.full(len(act), lt.power, np.float32)
        else:
            v = [lt.direction[k] - pts[k] for k in range(3)]
            dist2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2]
            dist_all = np.sqrt(dist2)
            ndl = (nx * v[0] + ny * v[1] + nz * v[2]) / dist_all
            act = np.flatnonzero(ndl > 0)
            dist = dist_all[act]
            tl = [v[k][act] / dist for k in range(3)]
            irr = lt.power / (dist2[act] + 0.25)
            if lt.spot > -1:
                irr = irr * _smoothstep(lt.spot, lt.spot + 0.2, tl[1])
                keep = np.flatnonzero(irr > 0)
                act, dist, irr, tl = act[keep], dist[keep], irr[keep], [c[keep] for c in tl]
        if not len(act):
            continue
        lit = ~_occluded(p, [c[act] for c in pts], tl, dist)
        e = irr * ndl[act] * lit
        diffuse[li, act] = e
        half = [tl[k] + view[k][act] for k in range(3)]
        hn = np.sqrt(half[0] ** 2 + half[1] ** 2 + half[2] ** 2) + 1e-9
        ndh = (nx[act] * half[0] + ny[act] * half[1] + nz[act] * half[2]) / hn
        # Blinn-Phong lobe, evaluated only where it is above 1e-3 (pow is the costly part).
        lobe = shin[act] * np.log(np.maximum(ndh, 1e-6))
        on = np.flatnonzero(lobe > -7)
        specular[li, act[on]] = spec[act[on]] * np.exp(lobe[on]) * (irr * lit)[on]

    # Ambient: sky fill darkened near spheres (analytic sphere occlusion) plus the indoor bounce.
    ao = np.ones(m, np.float32)
    for c, r, *_ in p.spheres:
        v = [c[k] - pts[k] for k in range(3)]
        dist2 = np.maximum(v[0] * v[0] + v[1] * v[1] + v[2] * v[2], r * r)
        cos = (nx * v[0] + ny * v[1] + nz * v[2]) / np.sqrt(dist2)
        ao *= 1 - np.clip(cos, 0, 1) * (r * r / dist2)
    sky_tint = (p.sky_horizon + p.sky_zenith) / np.float32(np.mean(p.sky_horizon + p.sky_zenith) + 1e-6)
    ambient = (p.fill * (0.3 + 0.7 * (0.5 + 0.5 * ny)) * ao)[:, None] * sky_tint
    if p.bounce > 0:
        total = sum(lt.power for lt in lights)
        tint = sum(lt.power * lt.color for lt in lights) / total
        ambient += (p.bounce * total * ao)[:, None] * tint
    colors = np.stack([lt.color for lt in lights]).astype(np.float32) / np.float32(np.pi)
    color = albedo * (_tint(diffuse, colors) + ambient) + _tint(specular, colors) + emission
    if np.isfinite(p.fog):
        fog = np.exp(-th / p.fog)[:, None]
        color = color * fog + (1 - fog) * p.sky_power * p.sky_horizon
    radiance[hit] = color

    # Glare: lens and air spread a little of each visible lamp's light around it.
    for lt in lights:
        if lt.kind != "lamp" or lt.radius <= 0:
            continue
        v = lt.direction - o
        dl = float(np.linalg.norm(v))
        u = v / dl
        if _occluded(p, [np.array([o[k]]) for k in range(3)], [np.array([u[k]], np.float32) for k in range(3)],
                     np.array([dl - lt.radius * 1.5]))[0]:
            continue
        theta2 = 2 * np.maximum(1 - (d[0] * u[0] + d[1] * u[1] + d[2] * u[2]), 0)
        near = np.flatnonzero(theta2 < 0.3**2)  # beyond 6 sigma of the wide lobe: nothing
        t2 = theta2[near]
        psf = 0.7 * np.exp(t2 * (-1 / (2 * 0.008**2))) / (2 * np.pi * 0.008**2) + 0.3 * np.exp(
            t2 * (-1 / (2 * 0.05**2))) / (2 * np.pi * 0.05**2)
        radiance[near] += (0.02 * lt.power / dl**2 * psf)[:, None] * lt.color
    return radiance.reshape(h, w, 3).astype(np.float32)
