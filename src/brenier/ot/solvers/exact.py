"""Exact semi-discrete OT in 2-D and 3-D: damped Newton on the Brenier heights h
(Kitagawa–Mérigot–Thibert) with exact power-diagram cell masses μ(W_i(h)) and Hessian.

E(h) = ∫ u_h dμ − Σ h_i ν_i, ∇E = μ(W_i(h)) − ν_i, ∇²E = L(h) (see `linalg`). Each step solves
L Δ = ∇E and takes h − τ Δ with the largest τ ∈ {1, 1/2, …} such that no cell mass falls below
ε₀ = ½ min(min_i μ(W_i(h⁰)), min_i ν_i) (no cell ever empties) and either ‖∇E‖ drops by the factor
1 − τ/2 (KMT's test) or E decreases by Armijo's rule. Trial diagrams are obtained by flipping the
previous regular triangulation; a trial τ > `flips_only` that flips cannot reach (a site would
leave it: a cell empties) is rejected without a fresh qhull hull, unless a step already needed
qhull after such rejections (flips stuck on a degenerate configuration).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...validation import check_positive_float, check_positive_int, check_weights
from ..cells.exact import check_heights, check_targets, source_domain
from ..power import Domain, PowerDiagram, PowerOptions, power_diagram, score_floor, spatial_order
from ..result import SolveResult, mass_error, step_record
from .linalg import AMG_MIN, ExactNewtonSystem
from .start import exact_start

ARMIJO = 1e-4


@dataclass(frozen=True)
class ExactOptions:
    """Tuning of the exact Newton solver.

    direct_limit_3d: above this many cells in 3-D the Newton system is solved by CG, not LU;
    amg_min: from this many cells LU gives way to AMG-preconditioned CG;
    inexact_rtol: CG's relative residual far from the solution;
    flips_only: larger trial steps that flips cannot reach are rejected without qhull;
    smoothing_*: continuation ρ_ε = (1 − ε)ρ + ε/|D| for densities with empty regions: ε starts at
    `smoothing_start`, shrinks by `smoothing_factor`, each stage solved to max_rel ≤ `smoothing_tol`,
    and ρ itself is taken once every cell keeps `smoothing_jump`·ν_i under it;
    power: how the power diagrams are built (PowerOptions).
    """

    direct_limit_3d: int = 2000
    amg_min: int = AMG_MIN
    inexact_rtol: float = 1e-2
    flips_only: float = 2.0**-3
    smoothing_start: float = 0.5
    smoothing_factor: float = 0.3
    smoothing_tol: float = 1e-2
    smoothing_jump: float = 0.25
    power: PowerOptions = PowerOptions()


class _Run:
    """Step counter, history and reporting shared by the stages of one solve."""

    def __init__(self, callback, verbose, max_iter, options: ExactOptions):
        self.callback, self.verbose, self.max_iter, self.options = callback, verbose, max_iter, options
        self.step, self.evals, self.history = 0, 0, []
        self.t0 = time.perf_counter()

    def record(self, err: dict, energy: float, tau: float, D: PowerDiagram, stage: float) -> None:
        self.step += 1
        how = D.triangulation.how if D.triangulation is not None else ""
        rec = step_record({"min_mass": err["min_mass"], "evaluations": self.evals,
                           "triangulation": how, "smoothing": stage},
                          step=self.step, chi2=err["chi2"], max_rel=err["max_rel"], l1=err["l1"],
                          energy=energy, step_length=tau, seconds=time.perf_counter() - self.t0)
        self.history.append(rec)
        if self.callback is not None:
            self.callback(rec)
        if self.verbose:
            print(f"newton {self.step:3d}  max_rel {err['max_rel']:.3e}  l1 {err['l1']:.3e}  "
                  f"tau {tau:.3g}  min_mass {err['min_mass']:.3e}  smoothing {stage:g}  "
                  f"triangulation {how}")


def _newton(dom: Domain, y: np.ndarray, nu: np.ndarray, h: np.ndarray, D: PowerDiagram,
            tol: float, run: _Run, stage: float = 0.0) -> tuple[np.ndarray, PowerDiagram, bool]:
    """Damped Newton (KMT) from heights h with all cells non-empty; stops at max_rel ≤ tol."""
    opt = run.options
    solver = ExactNewtonSystem(dom.dim == 2 or len(y) <= opt.direct_limit_3d, opt.amg_min)
    eps0 = 0.5 * min(float(D.masses.min()), float(nu.min()))
    g = D.masses - nu
    energy = _energy(D, y, h, nu)
    err = mass_error(D.masses, nu)
    flips_only = True
    while err["max_rel"] > tol and run.step < run.max_iter:
        e = err["max_rel"]  # inexact Newton: residual ~ e while the quadratic term dominates
        rtol = min(opt.inexact_rtol, e) if e * e > tol else max(1e-12, 0.1 * tol / e)
        delta = solver(D.hessian(y), g, nu, rtol)
        tau, gnorm, declined = 1.0, float(np.linalg.norm(g)), False
        while tau >= 2.0**-40:
            h_new = h - tau * delta
            D_new = power_diagram(y, h_new, dom, reuse=D.triangulation, options=opt.power,
                                  flips_only=flips_only and tau > opt.flips_only)
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
        err = mass_error(D.masses, nu)
        run.record(err, energy, tau, D, stage)
    return h, D, err["max_rel"] <= tol


def _energy(D: PowerDiagram, y: np.ndarray, h: np.ndarray, nu: np.ndarray) -> float:
    """E(h) = ∫ u_h dμ − Σ h_i ν_i = Σ_i ⟨∫_{W_i} x dμ, y_i⟩ + h_i (μ(W_i) − ν_i)."""
    return float(np.sum(D.moments * y) + h @ (D.masses - nu))


def _smoothed(dom: Domain, eps: float) -> Domain:
    """ρ_ε = (1 − ε) ρ + ε / |D|: a density with no empty region."""
    return Domain(dom.poly, grid=(1 - eps) * dom.grid + eps / dom.poly.volume)


def solve_exact(source: Any, y: Any, nu: Any = None, h0: Any = None, *, tol: float = 1e-9,
                max_iter: int = 200, callback: Callable[[dict], None] | None = None,
                verbose: bool = False, options: ExactOptions = ExactOptions()) -> SolveResult:
    """Damped Newton for the heights h with max_i |μ(W_i(h)) − ν_i|/ν_i ≤ tol.

    A pixel density with empty (zero) regions is reached by continuation: the problem is solved
    for ρ_ε = (1 − ε) ρ + ε/|D| with ε = 0.5, 0.05, … until every cell keeps mass under ρ, then
    for ρ itself.

    Args:
        source: UniformCube, UniformPolytope, GridDensity or 2-D UniformBall (d ∈ {2, 3}).
        y: targets (N, d); nu: weights (N,) (uniform when None; zero weights get empty cells).
        h0: starting heights (used when all its cells are non-empty).
        tol: stop at max relative mass error ≤ tol; max_iter: Newton steps at most (all stages).
        callback: called with each step's record (`brenier.ot.result`; step_length = τ, batch NaN;
            detail: min_mass, evaluations, smoothing ε, triangulation 'qhull'/'inserted'/'kept'/'flipped').
        options: tuning values (ExactOptions).

    Returns a SolveResult: h (N,) with mean 0 over the positive weights, steps, whether
    max_rel ≤ tol was reached, and the history.
    """
    dom = source if isinstance(source, Domain) else source_domain(source)
    yy = check_targets(y, dom)
    n = len(yy)
    w = check_weights(nu, n, "weights")
    tol = check_positive_float(tol, "tol")
    max_iter = check_positive_int(max_iter, "max_iter")
    act = np.flatnonzero(w > 0)
    if len(act) > 1:  # targets in a spatial order: local memory access in the hot loops
        act = act[spatial_order(yy[act])]
    ya, wa = yy[act], w[act]
    run = _Run(callback, verbose, max_iter, options)
    if len(act) == 1:
        h_act, converged = np.zeros(1), True
    else:
        D = None
        if h0 is not None:
            h_try = check_heights(h0, n, "h0")[act]
            D_try = power_diagram(ya, h_try, dom, options=options.power)
            if D_try.masses.min() > 0:
                h_act, D = h_try - h_try.mean(), D_try
        if D is None and dom.grid is not None and (dom.grid == 0).any():
            eps, h_act = options.smoothing_start, None
            while D is None and eps > 1e-12 and run.step < max_iter:
                dom_e = _smoothed(dom, eps)
                if h_act is None:
                    h_act, D_e = exact_start(dom_e, ya, options.power)
                else:
                    D_e = power_diagram(ya, h_act, dom_e, options=options.power)
                h_act, _, _ = _newton(dom_e, ya, wa, h_act, D_e, options.smoothing_tol, run, eps)
                D_try = power_diagram(ya, h_act, dom, options=options.power)
                if D_try.masses.min() >= options.smoothing_jump * wa.min():
                    D = D_try
                eps *= options.smoothing_factor
        if D is None:
            h_act, D = exact_start(dom, ya, options.power)
        h_act, D, converged = _newton(dom, ya, wa, h_act, D, tol, run)
    h = np.empty(n)
    h[act] = h_act
    if len(act) < n:  # zero-weight targets: heights low enough that their cells miss D
        floor = score_floor(ya, h_act, dom.poly.vertices)
        rest = np.setdiff1d(np.arange(n), act)
        top = (dom.poly.vertices @ yy[rest].T).max(axis=0)
        h[rest] = floor - top - (1.0 + abs(floor))
    return SolveResult(h, run.step, bool(converged), run.history, method="newton")
