"""Render the studio's sample reference clip: two shots of a synthetic plaza with real camera moves.

    python samples/make_sample_clip.py samples/plaza_two_shots.mp4

Everything is drawn here with numpy ray casting (no footage, no assets), so the clip can ship
with the repository and be rebuilt anywhere:

* shot 1 (2.5 s, warm evening light): the camera dollies forward along a row of striped columns
  on a checkered plaza while panning slowly right;
* a hard cut;
* shot 2 (2.0 s, blue night light): the camera trucks left past a single tall column, keeping
  it in frame, at a lower height.

The moves are real perspective motion (parallax between near and far columns, the floor's
checker converging to the horizon), which is what the captioner's Camera and Spatial aspects
describe and what shot detection must split.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FPS = 24


@dataclass(frozen=True)
class Column:
    x: float
    z: float
    radius: float
    height: float
    colour: tuple[float, float, float]


@dataclass(frozen=True)
class Look:
    sky_top: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    floor_a: tuple[float, float, float]
    floor_b: tuple[float, float, float]
    light: tuple[float, float, float]  # direction towards the light
    fog: float  # how fast distant things fade into the horizon colour


EVENING = Look(sky_top=(0.25, 0.35, 0.65), sky_horizon=(0.98, 0.66, 0.38), floor_a=(0.82, 0.74, 0.62),
               floor_b=(0.45, 0.36, 0.30), light=(-0.6, 0.45, 0.65), fog=0.035)
NIGHT = Look(sky_top=(0.02, 0.03, 0.10), sky_horizon=(0.10, 0.18, 0.35), floor_a=(0.16, 0.30, 0.22),
             floor_b=(0.06, 0.12, 0.10), light=(0.5, 0.8, -0.3), fog=0.06)

ROW = tuple(Column(x=side * 2.2, z=4.0 + 3.0 * i, radius=0.35, height=3.0 + 0.4 * (i % 3),
                   colour=(0.85, 0.25 + 0.1 * i % 0.6, 0.2)) for i in range(6) for side in (-1, 1))
TOWER = (Column(x=0.0, z=7.0, radius=0.8, height=6.0, colour=(0.9, 0.9, 0.95)),
         Column(x=-4.0, z=12.0, radius=0.4, height=2.5, colour=(0.4, 0.6, 0.9)),
         Column(x=5.0, z=15.0, radius=0.4, height=3.5, colour=(0.9, 0.5, 0.7)))


def rotation(yaw: float, pitch: float) -> np.ndarray:
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    yaw_m = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    pitch_m = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return yaw_m @ pitch_m


def render(width: int, height: int, position, yaw: float, pitch: float, columns, look: Look) -> np.ndarray:
    """One frame (height, width, 3) uint8: a pinhole camera at `position` looking along +z after yaw/pitch."""
    focal = 0.9 * width
    xs = (np.arange(width) - width / 2 + 0.5)
    ys = -(np.arange(height) - height / 2 + 0.5)
    gx, gy = np.meshgrid(xs, ys)
    rays = np.stack([gx, gy, np.full_like(gx, focal)], axis=-1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    rays = rays @ rotation(yaw, pitch).T
    origin = np.asarray(position, dtype=float)
    dx, dy, dz = rays[..., 0], rays[..., 1], rays[..., 2]

    # Sky: a vertical gradient from the horizon colour up.
    up = np.clip(dy, 0, 1)[..., None] ** 0.6
    image = (1 - up) * np.array(look.sky_horizon) + up * np.array(look.sky_top)
    depth = np.full(dx.shape, np.inf)

    # Floor (y = 0): a checkerboard with thin grout lines, faded into the horizon with distance.
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(dy < -1e-4, -origin[1] / dy, np.inf)
    hit = np.isfinite(t_floor)
    t_safe = np.where(hit, t_floor, 0.0)  # sky pixels: any finite value, masked out below
    px, pz = origin[0] + t_safe * dx, origin[2] + t_safe * dz
    checker = ((np.floor(px) + np.floor(pz)) % 2 == 0)[..., None]
    floor = np.where(checker, np.array(look.floor_a), np.array(look.floor_b))
    grout = (np.minimum(np.abs(px - np.round(px)), np.abs(pz - np.round(pz))) < 0.03)[..., None]
    floor = np.where(grout, floor * 0.55, floor)
    fog = 1 - np.exp(-look.fog * np.where(hit, t_floor, 0))[..., None]
    floor = (1 - fog) * floor + fog * np.array(look.sky_horizon)
    image = np.where(hit[..., None], floor, image)
    depth = np.where(hit, t_floor, depth)

    # Columns: ray-cylinder intersections in the floor plane, shaded by the light, with stripes
    # around the circumference so a pan or truck shows as texture sliding across the surface.
    light = np.array(look.light) / np.linalg.norm(look.light)
    flat = np.maximum(dx**2 + dz**2, 1e-9)
    for column in columns:
        ox, oz = origin[0] - column.x, origin[2] - column.z
        b = ox * dx + oz * dz
        c = ox**2 + oz**2 - column.radius**2
        disc = b**2 - flat * c
        with np.errstate(invalid="ignore"):
            t = (-b - np.sqrt(np.maximum(disc, 0))) / flat
        y = origin[1] + t * dy
        hit = (disc > 0) & (t > 0) & (y >= 0) & (y <= column.height) & (t < depth)
        if not hit.any():
            continue
        nx, nz = (ox + t * dx) / column.radius, (oz + t * dz) / column.radius
        shade = np.clip(nx * light[0] + nz * light[2], 0, 1) * 0.75 + 0.25
        stripes = ((np.floor((np.arctan2(nz, nx) + math.pi) / (2 * math.pi) * 12) + np.floor(y * 2)) % 2)
        colour = np.array(column.colour)[None, None, :] * (0.7 + 0.3 * stripes[..., None]) * shade[..., None]
        fog = 1 - np.exp(-look.fog * np.where(hit, t, 0))[..., None]
        colour = (1 - fog) * colour + fog * np.array(look.sky_horizon)
        image = np.where(hit[..., None], colour, image)
        depth = np.where(hit, t, depth)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def smooth(u: float) -> float:
    """Ease in and out, as a dolly grip would."""
    return u * u * (3 - 2 * u)


def frames(width: int, height: int, seconds_1: float = 2.5, seconds_2: float = 2.0):
    n1, n2 = round(seconds_1 * FPS), round(seconds_2 * FPS)
    for i in range(n1):  # shot 1: dolly forward, pan right
        u = smooth(i / (n1 - 1))
        yield render(width, height, (0.0, 1.6, -2.0 + 6.0 * u), yaw=math.radians(-8 + 22 * u),
                     pitch=math.radians(-4), columns=ROW, look=EVENING)
    for i in range(n2):  # shot 2: low truck left, panning to keep the tower framed
        u = smooth(i / (n2 - 1))
        x = 4.0 - 8.0 * u
        yield render(width, height, (x, 0.9, -1.0), yaw=math.atan2(0.0 - x, 8.0), pitch=math.radians(8),
                     columns=TOWER, look=NIGHT)


def write(path: Path, width: int = 320, height: int = 180, crf: int = 20) -> Path:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "slow"}
        for image in frames(width, height):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the mp4 to write")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--crf", type=int, default=20, help="x264 quality (lower: larger file)")
    args = parser.parse_args()
    path = write(args.out, args.width, args.height, args.crf)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
