"""Planar shapes for pictures of the singular set: convex, non-convex and multi-branch supports.

Each sampler draws n points uniformly (area measure) from its region by rejection from the
bounding box; `*_contains(x)` tells which points lie inside the same region.

* `disc`: the unit disc (convex: the OT map from a convex source is continuous);
* `crescent`: a disc with a disc-shaped bite — a non-convex, "hippocampus-like" C shape;
* `two_moons`: two interleaved half-annuli (two branches, each non-convex);
* `dumbbell`: two discs joined by a thin bar (one branch with a narrow neck).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..validation import BrenierError, check_points, check_positive_float, check_positive_int

Membership = Callable[[np.ndarray], np.ndarray]


def _rejection(n: int, seed: int | None, box: tuple[float, float, float, float],
               inside: Membership) -> np.ndarray:
    n = check_positive_int(n, "n")
    rng = np.random.default_rng(seed)
    lo, hi = np.array(box[:2]), np.array(box[2:])
    out, have = [], 0
    while have < n:
        x = lo + (hi - lo) * rng.random((max(2 * (n - have), 256), 2))
        x = x[inside(x)]
        out.append(x)
        have += len(x)
    return np.concatenate(out)[:n]


# ----------------------------------------------------------------------------- disc
def disc_contains(x: np.ndarray, radius: float = 1.0) -> np.ndarray:
    x = check_points(x, "x", dim=2, min_rows=0)
    return np.sum(x**2, axis=1) <= radius**2


def disc(n: int, seed: int | None = None, *, radius: float = 1.0) -> np.ndarray:
    """n points uniform in the disc of given radius centred at 0."""
    r = check_positive_float(radius, "radius")
    return _rejection(n, seed, (-r, -r, r, r), lambda x: disc_contains(x, r))


# ----------------------------------------------------------------------------- crescent
def crescent_contains(x: np.ndarray, bite: float = 0.75, offset: float = 0.55) -> np.ndarray:
    """Inside the unit disc and outside the disc of radius `bite` centred at (offset, 0)."""
    x = check_points(x, "x", dim=2, min_rows=0)
    outer = np.sum(x**2, axis=1) <= 1.0
    inner = (x[:, 0] - offset) ** 2 + x[:, 1] ** 2 < bite**2
    return outer & ~inner


def crescent(n: int, seed: int | None = None, *, bite: float = 0.75,
             offset: float = 0.55) -> np.ndarray:
    """n points uniform in a C-shaped region: the unit disc minus a disc bitten out on the right.

    The opening faces +x; the two horns end near (offset, ±√(1 − ...)). Non-convex, one branch.
    """
    bite = check_positive_float(bite, "bite")
    offset = check_positive_float(offset, "offset")
    return _rejection(n, seed, (-1, -1, 1, 1), lambda x: crescent_contains(x, bite, offset))


# ----------------------------------------------------------------------------- two moons
def two_moons_contains(x: np.ndarray, width: float = 0.3) -> np.ndarray:
    """Two half-annuli of radii 1 ± width/2: the upper one centred at 0, the lower at (1, 0.4)."""
    x = check_points(x, "x", dim=2, min_rows=0)
    r1 = np.hypot(x[:, 0], x[:, 1])
    upper = (np.abs(r1 - 1) <= width / 2) & (x[:, 1] >= 0)
    r2 = np.hypot(x[:, 0] - 1, x[:, 1] - 0.4)
    lower = (np.abs(r2 - 1) <= width / 2) & (x[:, 1] <= 0.4)
    return upper | lower


def two_moons(n: int, seed: int | None = None, *, width: float = 0.3) -> np.ndarray:
    """n points uniform on two interleaved moons (thick half-annuli) that do not touch."""
    w = check_positive_float(width, "width")
    if w >= 0.5:
        raise BrenierError(f"width: expected < 0.5 so that the moons stay apart, got {width!r}")
    return _rejection(n, seed, (-1.2, -0.8, 2.2, 1.2), lambda x: two_moons_contains(x, w))


# ----------------------------------------------------------------------------- dumbbell
def dumbbell_contains(x: np.ndarray, radius: float = 0.6, gap: float = 1.0,
                      neck: float = 0.12) -> np.ndarray:
    """Two discs of `radius` centred at (±(radius + gap/2), 0) joined by a bar of width `neck`."""
    x = check_points(x, "x", dim=2, min_rows=0)
    c = radius + gap / 2
    left = (x[:, 0] + c) ** 2 + x[:, 1] ** 2 <= radius**2
    right = (x[:, 0] - c) ** 2 + x[:, 1] ** 2 <= radius**2
    bar = (np.abs(x[:, 0]) <= c) & (np.abs(x[:, 1]) <= neck / 2)
    return left | right | bar


def dumbbell(n: int, seed: int | None = None, *, radius: float = 0.6, gap: float = 1.0,
             neck: float = 0.12) -> np.ndarray:
    """n points uniform in two discs joined by a thin bar."""
    r = check_positive_float(radius, "radius")
    g = check_positive_float(gap, "gap")
    nk = check_positive_float(neck, "neck")
    c = r + g / 2
    return _rejection(n, seed, (-c - r, -r, c + r, r), lambda x: dumbbell_contains(x, r, g, nk))
