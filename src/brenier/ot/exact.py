"""Exact semi-discrete OT in 2-D and 3-D: damped Newton on the Brenier heights h
(Kitagawa–Mérigot–Thibert) with exact power-diagram cell masses μ(W_i(h)) and Hessian.

Energy E(h) = ∫ u_h dμ − Σ h_i ν_i, u_h(x) = max_i ⟨x, y_i⟩ + h_i; ∇E = μ(W_i(h)) − ν_i and
∇²E = L(h), the Laplacian with weights μ(F_ij)/|y_i − y_j| over the facets F_ij = W_i ∩ W_j.
Each step solves L δ = ∇E and takes h − τ δ with the largest τ ∈ {1, 1/2, …} such that no cell
mass falls below ε₀ = ½ min(min_i μ(W_i(h⁰)), min_i ν_i) (no cell ever empties) and either
‖∇E‖ drops by the factor 1 − τ/2 (KMT's test) or E decreases by Armijo's rule. Trial diagrams
are obtained by flipping the previous regular triangulation; a trial τ > 1/8 that flips cannot
reach (a site would leave it: a cell empties) is rejected without a fresh qhull hull, unless
a step already needed qhull after such rejections (flips stuck on a degenerate configuration).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import LinearOperator, cg, splu

from ..measures import SourceMeasure, UniformBall, UniformCube
from ..validation import (
    BrenierError,
    check_distinct,
    check_points,
    check_positive_float,
    check_positive_int,
    check_weights,
    to_numpy,
)
from .grid_density import GridDensity, UniformPolytope
from .power import Domain, Polytope, PowerDiagram, power_diagram, score_floor, spatial_order

BALL_SIDES = 512  # a 2-D ball is replaced by the inscribed regular polygon with this many sides
DIRECT_LIMIT_3D = 2000  # above this many cells in 3-D the Newton system is solved by CG
INEXACT_RTOL = 1e-2  # far from the solution CG stops at this relative residual
AMG_MIN = 20000  # from this many cells the direct path is AMG-preconditioned CG (pyamg)
AMG_RTOL, AMG_REBUILD = 1e-2, 25  # its residual cap; iterations beyond which AMG is rebuilt
# one forward Gauss–Seidel sweep before and one backward sweep after the coarse correction: a
# symmetric V-cycle (as CG needs) at half the cost of pyamg's default symmetric sweeps both ways
AMG_OPTIONS: dict = {"presmoother": ("gauss_seidel", {"sweep": "forward"}),
                     "postsmoother": ("gauss_seidel", {"sweep": "backward"})}


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


def _targets(y: Any, dom: Domain, name: str = "targets") -> np.ndarray:
    arr = to_numpy(y, name)
    if arr.ndim == 2 and arr.shape[1] not in (2, 3):
        raise BrenierError(f"{name}: the exact solver works in d ∈ {{2, 3}}, got d={arr.shape[1]}")
    pts = check_points(arr, name, dim=dom.dim)
    check_distinct(pts, name)
    return pts


def _heights(h: Any, n: int, name: str = "h") -> np.ndarray:
    arr = np.asarray(to_numpy(h, name), dtype=np.float64)
    if arr.shape != (n,):
        raise BrenierError(f"{name}: expected shape ({n},) to match the targets, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise BrenierError(f"{name}: heights must be finite")
    return arr


def exact_diagram(source: Any, y: Any, h: Any, *, segments: bool = False) -> PowerDiagram:
    """The power diagram of (y, h) restricted to the source's domain, with exact integrals."""
    dom = source if isinstance(source, Domain) else source_domain(source)
    yy = _targets(y, dom)
    return power_diagram(yy, _heights(h, len(yy)), dom, segments=segments)


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
    return _errors(m, w)


def _errors(m: np.ndarray, nu: np.ndarray) -> dict:
    pos = nu > 0
    diff = m - nu
    return {"l1": float(np.abs(diff).sum()), "max_rel": float(np.max(np.abs(diff[pos]) / nu[pos])),
            "chi2": float(np.sum(diff[pos] ** 2 / nu[pos])), "min_mass": float(m[pos].min())}


def exact_singular_edges(source: Any, y: Any, h: Any, *, scale: float = 3.0, k: int = 4) -> dict:
    """Singular set of u_h in 2-D: clipped facets F_ij whose targets are not neighbours.

    y_i and y_j count as neighbours in the target support when |y_i − y_j| ≤ scale · max(s_i, s_j),
    s_i = distance from y_i to its k-th nearest target. Returns {'segments': (K, 2, 2),
    'pairs': (K, 2), 'facet_mass': (K,)}: the power-diagram edges across which T = ∇u_h jumps
    between separate parts of the target support (Gu's singular set).
    """
    from scipy.spatial import cKDTree

    dom = source if isinstance(source, Domain) else source_domain(source)
    if dom.dim != 2:
        raise BrenierError(f"source: singular edges are drawn in 2-D only, got d={dom.dim}")
    scale = check_positive_float(scale, "scale")
    k = check_positive_int(k, "k")
    yy = _targets(y, dom)
    D = power_diagram(yy, _heights(h, len(yy)), dom, segments=True)
    kk = min(k, len(yy) - 1)
    if kk < 1:
        return {"segments": np.zeros((0, 2, 2)), "pairs": np.zeros((0, 2), np.int64),
                "facet_mass": np.zeros(0)}
    dist, _ = cKDTree(yy).query(yy, kk + 1)
    s = dist[:, kk]
    i, j = D.pairs.T
    far = np.linalg.norm(yy[i] - yy[j], axis=1) > scale * np.maximum(s[i], s[j])
    far &= np.linalg.norm(D.segments[:, 1] - D.segments[:, 0], axis=1) > 0
    return {"segments": D.segments[far], "pairs": D.pairs[far], "facet_mass": D.facet_mass[far]}


# ---------------------------------------------------------------------------------------- Newton


def _start_point(dom: Domain) -> tuple[np.ndarray, float]:
    """A point m where ρ > 0 (the mean of μ when ρ > 0 there) and the RMS spread of μ."""
    rng = np.random.default_rng(0)
    low, high = dom.low, dom.high
    x = low + rng.random((1 << 15, dom.dim)) * (high - low)
    w = dom.density_at(x)
    mean = (w @ x) / w.sum()
    spread = float(np.sqrt((w @ np.sum((x - mean) ** 2, axis=1)) / w.sum()))
    if dom.density_at(mean[None])[0] > 0:
        return mean, spread
    if dom.grid is None:
        return dom.poly.centroid, spread
    flat = int(np.argmax(dom.grid))
    idx = np.array(np.unravel_index(flat, dom.grid.shape))
    return low + (idx + 0.5) * dom.cell, spread


def initial_heights(dom: Domain, y: np.ndarray, max_tries: int = 60) -> tuple[np.ndarray, PowerDiagram]:
    """Heights whose cells all have positive mass: the Voronoi cells of y moved onto μ,
    z_i = m + (y_i − ȳ)/a (m: a point of positive density, a: ratio of spreads, raised so that
    every z_i lies inside D), with a grown further while some cell is empty (zero-density regions).
    """
    m, spread_mu = _start_point(dom)
    yc = y - y.mean(axis=0)
    spread_y = float(np.sqrt(np.mean(np.sum(yc**2, axis=1)))) or 1.0
    a = spread_y / max(spread_mu, 1e-12)
    room = dom.poly.b - dom.poly.A @ m  # > 0: m is inside D
    if (room > 0).all():
        a = max(a, 1.01 * float(np.max((yc @ dom.poly.A.T) / room)))
    for _ in range(max_tries):
        z = m + yc / a
        h = -a * np.sum(z**2, axis=1) / 2
        h -= h.mean()
        D = power_diagram(y, h, dom)
        if D.masses.min() > 0:
            return h, D
        a *= 2.0
    raise BrenierError("targets: could not find heights with every cell non-empty "
                       "(are some targets duplicated or nearly so?)")


def _pyamg():
    try:
        import pyamg
    except ImportError:  # pragma: no cover
        return None
    return pyamg


class _NewtonSolver:
    """Solves (L + σ diag ν) δ = g; σ tiny fixes the constant null vector (and any disconnected
    components of the facet graph, e.g. across zero-density gaps).

    Direct: a sparse LU with a symmetric ordering (planar-like graphs), reused as the
    preconditioner of CG for the next Hessians and refactored when CG stalls; from AMG_MIN cells
    on, CG preconditioned by a smoothed-aggregation AMG hierarchy (pyamg) instead, rebuilt when
    CG needs more than AMG_REBUILD iterations. Otherwise Jacobi-preconditioned CG."""

    def __init__(self, direct: bool):
        self.direct = direct
        self.lu = None
        self.amg = None
        self.factorizations = 0

    def _amg(self, A: sp.csr_matrix, g: np.ndarray, rtol: float) -> np.ndarray | None:
        for fresh in (False, True):
            if self.amg is None or fresh:
                self.amg = _pyamg().smoothed_aggregation_solver(
                    A, symmetry="symmetric", max_coarse=500, coarse_solver="splu",
                    improve_candidates=None, **AMG_OPTIONS)
                self.factorizations += 1
            it = np.zeros(1, np.int64)
            delta, info = cg(A, g, rtol=min(rtol, AMG_RTOL), maxiter=4 * AMG_REBUILD,
                             M=self.amg.aspreconditioner(), callback=lambda _, it=it: it.__iadd__(1))
            if info == 0:
                if it[0] > AMG_REBUILD:
                    self.amg = None
                return delta
        return None

    def __call__(self, L: sp.csr_matrix, g: np.ndarray, nu: np.ndarray, rtol: float) -> np.ndarray:
        c = float(np.median(L.diagonal() / nu))
        ncomp = connected_components(L, directed=False)[0] if len(nu) > 1 else 1
        sigma = (1e-10 if ncomp == 1 else 1e-3) * c
        A = (L + sp.diags(sigma * nu)).tocsr()
        if self.direct and len(nu) >= AMG_MIN and _pyamg() is not None:
            delta = self._amg(A, g, rtol)
            if delta is not None:
                return delta
        if not self.direct:
            delta, _ = cg(A, g, rtol=rtol, maxiter=10000, M=sp.diags(1.0 / A.diagonal()))
            return delta
        A = A.tocsc()
        if self.lu is not None and rtol < 1e-3:  # near the solution L(h) changes little
            lu = self.lu
            M = LinearOperator(A.shape, matvec=lu.solve, dtype=np.float64)
            delta, info = cg(A, g, x0=lu.solve(g), rtol=rtol, maxiter=10, M=M)
            if info == 0:
                return delta
        self.lu = splu(A, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})
        self.factorizations += 1
        return self.lu.solve(g)


class _Run:
    """Step counter, history and reporting shared by the stages of one solve."""

    def __init__(self, callback, verbose, max_iter):
        self.callback, self.verbose, self.max_iter = callback, verbose, max_iter
        self.step, self.evals, self.history = 0, 0, []
        self.t0 = time.perf_counter()

    def record(self, err: dict, tau: float, D: PowerDiagram, stage: float) -> None:
        self.step += 1
        rec = {"step": self.step, **err, "tau": tau, "evaluations": self.evals,
               "triangulation": D.triangulation.how if D.triangulation is not None else "",
               "smoothing": stage, "seconds": time.perf_counter() - self.t0}
        self.history.append(rec)
        if self.callback is not None:
            self.callback(rec)
        if self.verbose:
            print(f"newton {self.step:3d}  max_rel {err['max_rel']:.3e}  l1 {err['l1']:.3e}  "
                  f"tau {tau:.3g}  min_mass {err['min_mass']:.3e}  smoothing {stage:g}  "
                  f"triangulation {rec['triangulation']}")


def _newton(dom: Domain, y: np.ndarray, nu: np.ndarray, h: np.ndarray, D: PowerDiagram,
            tol: float, run: _Run, stage: float = 0.0) -> tuple[np.ndarray, PowerDiagram, bool]:
    """Damped Newton (KMT) from heights h with all cells non-empty; stops at max_rel ≤ tol."""
    solver = _NewtonSolver(dom.dim == 2 or len(y) <= DIRECT_LIMIT_3D)
    eps0 = 0.5 * min(float(D.masses.min()), float(nu.min()))
    g = D.masses - nu
    energy = _energy(D, y, h, nu)
    err = _errors(D.masses, nu)
    flips_only = True
    while err["max_rel"] > tol and run.step < run.max_iter:
        e = err["max_rel"]  # inexact Newton: residual ~ e while the quadratic term dominates
        rtol = min(INEXACT_RTOL, e) if e * e > tol else max(1e-12, 0.1 * tol / e)
        delta = solver(D.hessian(y), g, nu, rtol)
        tau, gnorm, declined = 1.0, float(np.linalg.norm(g)), False
        while tau >= 2.0**-40:
            h_new = h - tau * delta
            D_new = power_diagram(y, h_new, dom, reuse=D.triangulation,
                                  flips_only=flips_only and tau > FLIPS_ONLY)
            run.evals += 1
            if D_new is None:  # flips cannot reach h_new: a cell would empty (or degenerate)
                tau, declined = tau / 2, True
                continue
            g_new = D_new.masses - nu
            e_new = _energy(D_new, y, h_new, nu)
            if D_new.masses.min() >= eps0 and (
                    np.linalg.norm(g_new) <= (1 - tau / 2) * gnorm  # KMT's test
                    or e_new <= energy - ARMIJO * tau * float(g @ delta)):  # or Armijo on E
                break
            tau /= 2
        if tau < 2.0**-40:  # no acceptable step: the rounding floor is reached
            break
        if declined and D_new.triangulation is not None and D_new.triangulation.how in ("qhull", "inserted"):
            flips_only = False  # flips failed on a degenerate configuration, not an emptying cell
        h, D, g, energy = h_new - h_new.mean(), D_new, g_new, e_new - float(h_new.mean())
        err = _errors(D.masses, nu)
        run.record(err, tau, D, stage)
    return h, D, err["max_rel"] <= tol


SMOOTHING_START, SMOOTHING_FACTOR, SMOOTHING_TOL = 0.5, 0.3, 1e-2
SMOOTHING_JUMP = 0.25  # go to ρ itself once every cell keeps this share of ν_i under ρ
ARMIJO = 1e-4
FLIPS_ONLY = 2.0**-3  # larger trial steps that flips cannot reach are rejected without qhull


def _energy(D: PowerDiagram, y: np.ndarray, h: np.ndarray, nu: np.ndarray) -> float:
    """E(h) = ∫ u_h dμ − Σ h_i ν_i = Σ_i ⟨∫_{W_i} x dμ, y_i⟩ + h_i (μ(W_i) − ν_i)."""
    return float(np.sum(D.moments * y) + h @ (D.masses - nu))


def _smoothed(dom: Domain, eps: float) -> Domain:
    """ρ_ε = (1 − ε) ρ + ε / |D|: a density with no empty region."""
    return Domain(dom.poly, grid=(1 - eps) * dom.grid + eps / dom.poly.volume)


def solve_exact(source: Any, y: Any, nu: Any = None, h0: Any = None, *, tol: float = 1e-9,
                max_iter: int = 200, callback: Callable[[dict], None] | None = None,
                verbose: bool = False) -> tuple[np.ndarray, int, bool, list[dict]]:
    """Damped Newton for the heights h with max_i |μ(W_i(h)) − ν_i|/ν_i ≤ tol.

    A pixel density with empty (zero) regions is reached by continuation: the problem is solved
    for ρ_ε = (1 − ε) ρ + ε/|D| with ε = 0.5, 0.05, … until every cell keeps mass under ρ, then
    for ρ itself.

    Args:
        source: UniformCube, UniformPolytope, GridDensity or 2-D UniformBall (d ∈ {2, 3}).
        y: targets (N, d); nu: weights (N,) (uniform when None; zero weights get empty cells).
        h0: starting heights (used when all its cells are non-empty).
        tol: stop at max relative mass error ≤ tol; max_iter: Newton steps at most (all stages).
        callback: called with each step's record.

    Returns (h (N,) with mean 0 over positive weights, n_iter, converged, history) where each
    history record holds step, max_rel, l1, min_mass, tau, evaluations, smoothing ε,
    triangulation ('qhull', 'kept', 'flipped'), seconds.
    """
    dom = source if isinstance(source, Domain) else source_domain(source)
    yy = _targets(y, dom)
    n = len(yy)
    w = check_weights(nu, n, "weights")
    tol = check_positive_float(tol, "tol")
    max_iter = check_positive_int(max_iter, "max_iter")
    act = np.flatnonzero(w > 0)
    if len(act) > 1:  # targets in a spatial order: local memory access in the hot loops
        act = act[spatial_order(yy[act])]
    ya, wa = yy[act], w[act]
    run = _Run(callback, verbose, max_iter)
    if len(act) == 1:
        h_act, converged = np.zeros(1), True
    else:
        D = None
        if h0 is not None:
            h_try = _heights(h0, n, "h0")[act]
            D_try = power_diagram(ya, h_try, dom)
            if D_try.masses.min() > 0:
                h_act, D = h_try - h_try.mean(), D_try
        if D is None and dom.grid is not None and (dom.grid == 0).any():
            eps, h_act = SMOOTHING_START, None
            while D is None and eps > 1e-12 and run.step < max_iter:
                dom_e = _smoothed(dom, eps)
                if h_act is None:
                    h_act, D_e = initial_heights(dom_e, ya)
                else:
                    D_e = power_diagram(ya, h_act, dom_e)
                h_act, _, _ = _newton(dom_e, ya, wa, h_act, D_e, SMOOTHING_TOL, run, eps)
                D_try = power_diagram(ya, h_act, dom)
                if D_try.masses.min() >= SMOOTHING_JUMP * wa.min():
                    D = D_try
                eps *= SMOOTHING_FACTOR
        if D is None:
            h_act, D = initial_heights(dom, ya)
        h_act, D, converged = _newton(dom, ya, wa, h_act, D, tol, run)
    h = np.empty(n)
    h[act] = h_act
    if len(act) < n:  # zero-weight targets: heights low enough that their cells miss D
        floor = score_floor(ya, h_act, dom.poly.vertices)
        rest = np.setdiff1d(np.arange(n), act)
        top = (dom.poly.vertices @ yy[rest].T).max(axis=0)
        h[rest] = floor - top - (1.0 + abs(floor))
    return h, run.step, bool(converged), run.history
