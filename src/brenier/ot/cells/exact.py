"""Cell quantities from the exact power diagram (d ∈ {2, 3}): the domain D and density ρ of a
source μ, the cells W_i(h) of (y, h) clipped to D, their masses μ(W_i), centroids and facets."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...measures import GridDensity, SourceMeasure, UniformBall, UniformCube, UniformPolytope
from ...validation import (
    BrenierError,
    check_distinct,
    check_points,
    check_weights,
    to_numpy,
)
from ..power import Domain, Polytope, PowerDiagram, power_diagram
from ..result import mass_error

BALL_SIDES = 512  # a 2-D ball is replaced by the inscribed regular polygon with this many sides


def source_domain(source: Any) -> Domain:
    """The domain D and density of a source the exact solver handles (d ∈ {2, 3})."""
    if not isinstance(source, SourceMeasure):
        raise BrenierError(f"source: expected a SourceMeasure, got {type(source).__name__}")
    d = source.dim
    if d not in (2, 3):
        raise BrenierError(f"source: the exact (power-diagram) solver works in d ∈ {{2, 3}}, got d={d}")
    if isinstance(source, UniformCube):
        return Domain(Polytope.box(source.low, source.high))
    if isinstance(source, UniformPolytope):
        return Domain(Polytope.from_vertices(source.vertices, "source"))
    if isinstance(source, GridDensity):
        return Domain(Polytope.box(source.low, source.high), grid=source.density)
    if isinstance(source, UniformBall) and d == 2:
        a = 2 * np.pi * np.arange(BALL_SIDES) / BALL_SIDES
        return Domain(Polytope.from_vertices(source.center + source.radius * np.c_[np.cos(a), np.sin(a)]))
    raise BrenierError(
        f"source: the exact solver needs UniformCube, UniformPolytope, GridDensity or a 2-D "
        f"UniformBall, got {type(source).__name__} in {d}-D")


def check_targets(y: Any, dom: Domain, name: str = "targets") -> np.ndarray:
    arr = to_numpy(y, name)
    if arr.ndim == 2 and arr.shape[1] not in (2, 3):
        raise BrenierError(f"{name}: the exact solver works in d ∈ {{2, 3}}, got d={arr.shape[1]}")
    pts = check_points(arr, name, dim=dom.dim)
    check_distinct(pts, name)
    return pts


def check_heights(h: Any, n: int, name: str = "h") -> np.ndarray:
    arr = np.asarray(to_numpy(h, name), dtype=np.float64)
    if arr.shape != (n,):
        raise BrenierError(f"{name}: expected shape ({n},) to match the targets, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise BrenierError(f"{name}: heights must be finite")
    return arr


def exact_diagram(source: Any, y: Any, h: Any, *, segments: bool = False) -> PowerDiagram:
    """The power diagram of (y, h) restricted to the source's domain, with exact integrals."""
    dom = source if isinstance(source, Domain) else source_domain(source)
    yy = check_targets(y, dom)
    return power_diagram(yy, check_heights(h, len(yy)), dom, segments=segments)


def exact_cell_masses(source: Any, y: Any, h: Any) -> np.ndarray:
    """μ(W_i(h)), shape (N,), exact up to rounding."""
    return exact_diagram(source, y, h).masses


def exact_centroids(source: Any, y: Any, h: Any) -> np.ndarray:
    """Barycentres ∫_{W_i} x dμ / μ(W_i) of the cells, shape (N, d) (NaN for empty cells)."""
    return exact_diagram(source, y, h).centroids()


def exact_mass_error(source: Any, y: Any, h: Any, nu: Any = None) -> dict:
    """{'l1': Σ|μ(W_i) − ν_i|, 'max_rel': max |μ(W_i) − ν_i|/ν_i, 'chi2': Σ (μ(W_i) − ν_i)²/ν_i,
    'min_mass'} from exact masses."""
    m = exact_cell_masses(source, y, h)
    w = check_weights(nu, len(m), "weights")
    return mass_error(m, w)
