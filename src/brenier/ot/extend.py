"""Generation by extending the semi-discrete OT map T = ∇u_h, with or without its singular set.

T sends the whole cell W_i(h) to one target y_i, so sampling x ~ μ and returning T(x) only copies
targets (``extension="none"``). AE-OT's piecewise-linear (PL) extension replaces it by the map that
sends each cell centroid c_i = E[x | x ∈ W_i] to y_i and is affine on simplices of centroids:

    T̃(x) = Σ_v λ_v(x) y_v,   Σ_v λ_v(x) c_v = x,   Σ_v λ_v(x) = 1,

over a simplex of d + 1 centroids around x. The simplex is found in any dimension without a
Delaunay triangulation: start from the d + 1 centroids nearest to x (among the `n_candidates`
nearest, found by the same top-k kernel as the cells: nearest centroid = argmax ⟨x, c_v⟩ − |c_v|²/2)
and, while x is outside (some λ_v < 0), swap the most negative vertex for the candidate that
raises min λ the most, as a walk in a triangulation would.

With ``extension="pl"`` (default) only cells v whose pair with the cell of x, i₀, is regular
(θ̂_{i₀v} ≤ θ*, see `brenier.ot.singular`) may be vertices, so T̃ is continuous inside a branch and
jumps across the singular set: samples fill each branch of the support of ν and never the gaps
between branches. ``extension="naive"`` ignores the singular set and interpolates across it,
which puts samples in the gaps (mode mixture).

Near the edge of a branch x lies beyond the centroids of the branch (a boundary cell's centroid is
inside the cell): there one λ_v is negative and T̃ continues the affine piece a little past the
branch's outer targets, as a continuous map to a continuous density would. The extrapolation is
bounded: when min λ < −`max_extrapolation` (a degenerate or distant simplex) λ is pulled towards
the simplex's barycentre u, λ ← u + s(λ − u) with the largest s keeping min λ ≥ −max_extrapolation,
which never collapses onto one vertex (no copies of targets). Where fewer than d + 1 admissible
centroids are among the candidates (a thin part of a branch) the search is widened 4×; a point
with none at all (an isolated target) gets the plain map T(x) = y_{i₀}.
"""

from __future__ import annotations

import hashlib
import weakref
from typing import Any

import numpy as np

from ..validation import ROWS, BrenierError, check_choice, check_positive_int, like
from .assign import Assigner
from .singular import SingularSet, singular_set

EXTENSIONS = ("pl", "naive", "none")
CHUNK = 1 << 14

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class PiecewiseLinearExtension:
    """The extended map T̃ of a fitted SemiDiscreteOT.

    Args:
        model: a fitted `SemiDiscreteOT`.
        singular: its `SingularSet` (provides the cell centroids and the singular rule).
        extension: "pl" (singular-aware), "naive" (ignores the singular set) or "none" (T itself).
        n_candidates: nearest centroids examined per point (default 3(d + 1)).
        max_steps: vertex swaps of the simplex walk (default d + 2).
        max_extrapolation: how negative a barycentric weight may be (extrapolation bound).
    """

    def __init__(self, model: Any, singular: SingularSet, extension: str = "pl",
                 n_candidates: int | None = None, max_steps: int | None = None,
                 max_extrapolation: float = 1.0):
        self.model = model
        self.singular = singular
        self.extension = check_choice(extension, "extension", EXTENSIONS)
        if not (isinstance(max_extrapolation, (int, float)) and max_extrapolation >= 0):
            raise BrenierError(f"max_extrapolation: expected a number >= 0, got {max_extrapolation!r}")
        self.max_extrapolation = float(max_extrapolation)
        d = model.targets_.shape[1]
        has = np.flatnonzero(np.isfinite(singular.centroids).all(axis=1))
        self._cells = has  # cells with a centroid estimate
        self.simplex = min(d + 1, len(has))
        k = check_positive_int(n_candidates, "n_candidates", allow_none=True) or 3 * (d + 1)
        self.n_candidates = min(max(k, self.simplex), len(has))
        self.max_steps = check_positive_int(max_steps, "max_steps", allow_none=True) or d + 2
        if self.extension != "none" and len(has):
            c = singular.centroids[has]
            self._nearest = Assigner(c, model.source_.mean(), model.backend, model.device)
            self._nearest.set_heights(-0.5 * np.sum(c**2, axis=1))

    def __call__(self, x: Any) -> Any:
        """T̃(x) for source points x (M, d)."""
        xs = self.model._points(x)
        out = np.empty_like(xs)
        for a in range(0, len(xs), CHUNK):
            cells, lam = self.weights(xs[a:a + CHUNK])
            out[a:a + CHUNK] = np.einsum("mk,mkd->md", lam, self.model.targets_[cells])
        return like(out, x)

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """n new points T̃(x), x ~ μ drawn from `seed`."""
        n = check_positive_int(n, "n")
        return self(self.model.source_.sample(n, seed=seed))

    def weights(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cells (M, k), λ (M, k)): the simplex of each point and its weights (0 if unused)."""
        x = np.asarray(x, np.float64)
        i0 = self.model.top_k(x, 1)[0][:, 0]
        if self.extension == "none" or self.simplex < 1:
            return i0[:, None], np.ones((len(x), 1))
        cells, lam, active, ok = self._simplex(x, i0, self.n_candidates)
        few = np.flatnonzero(ok.sum(axis=1) < self.simplex)
        wider = min(4 * self.n_candidates, len(self._cells))
        if len(few) and wider > self.n_candidates:  # a thin part of a branch: look further
            cells[few], lam[few], active[few], _ = self._simplex(x[few], i0[few], wider)
        if self.extension == "pl":  # a simplex with a singular edge straddles two branches:
            bad, _ = self._straddling(cells, active)  # walk again among the heaviest vertex's branch
            if len(bad):
                anchor = cells[bad, _heaviest(lam[bad], active[bad])]
                cells[bad], lam[bad], active[bad], _ = self._simplex(x[bad], anchor, self.n_candidates)
                lam[bad], active[bad] = self._prune_singular_edges(x[bad], cells[bad], lam[bad],
                                                                   active[bad])
        lost = ~active.any(axis=1)  # no admissible centroid at all: the plain map
        cells[lost, 0], lam[lost], active[lost] = i0[lost], 0.0, False
        lam[lost, 0], active[lost, 0] = 1.0, True
        return cells, _limit_extrapolation(lam, active, self.max_extrapolation)

    def _straddling(self, cells: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows whose simplex has a singular edge — two active vertices forming a singular pair,
        the (M, k, k) singular flags of all vertex pairs)."""
        sing = self.singular.classify(cells[:, :, None], cells[:, None, :])
        return np.flatnonzero((sing & active[:, :, None] & active[:, None, :]).any(axis=(1, 2))), sing

    def _prune_singular_edges(self, x: np.ndarray, cells: np.ndarray, lam: np.ndarray,
                              active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keep each simplex inside one branch: where two of its vertices form a singular pair, drop
        the vertices that are singular to the heaviest one (largest λ) and recompute λ."""
        bad, sing = self._straddling(cells, active)
        if len(bad) == 0:
            return lam, active
        keep = active[bad] & ~sing[bad, _heaviest(lam[bad], active[bad])]
        lam, active = lam.copy(), active.copy()
        active[bad] = keep
        lam[bad] = _barycentric(self.singular.centroids[cells[bad]], x[bad], keep)
        return lam, active

    def _simplex(self, x: np.ndarray, centre: np.ndarray, k: int):
        """(cells, λ, active, admissible mask) of the simplex chosen among the k centroids nearest
        to x, admissibility judged against the cells `centre`."""
        cand, ok = self._candidates(x, centre, k)
        sel, lam, active = self._walk(x, cand, ok)
        return np.take_along_axis(cand, sel, axis=1), lam, active, ok

    def _candidates(self, x: np.ndarray, i0: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest centroids' cells, admissible ones first (by distance), and the mask."""
        cand = self._cells[self._nearest.top_k(x, k)[0]]
        ok = np.ones(cand.shape, bool)
        if self.extension == "pl":
            ok = ~self.singular.classify(i0[:, None], cand)
        order = np.argsort(~ok, axis=1, kind="stable")
        return np.take_along_axis(cand, order, axis=1), np.take_along_axis(ok, order, axis=1)

    def _walk(self, x: np.ndarray, cand: np.ndarray, ok: np.ndarray):
        """Choose d + 1 of the candidate centroids whose simplex holds x (or comes closest)."""
        m, k = len(x), self.simplex
        rows = np.arange(m)
        c = self.singular.centroids

        def solve(sel, r):
            act = ok[r[:, None], sel]
            return _barycentric(c[cand[r[:, None], sel]], x[r], act), act

        sel = np.tile(np.arange(k), (m, 1))
        lam, active = solve(sel, rows)
        for _ in range(self.max_steps):
            score = np.where(active, lam, np.inf).min(axis=1)
            todo = np.flatnonzero((score < 0) & active.all(axis=1))
            if len(todo) == 0:
                break
            worst = np.argmin(np.where(active[todo], lam[todo], np.inf), axis=1)
            best, best_sel = score[todo], sel[todo].copy()
            for j in range(k, cand.shape[1]):
                trial = sel[todo].copy()
                trial[np.arange(len(todo)), worst] = j
                lt, at = solve(trial, todo)
                st = np.where(at, lt, np.inf).min(axis=1)
                better = ok[todo, j] & ~(sel[todo] == j).any(axis=1) & (st > best + 1e-12)
                best = np.where(better, st, best)
                best_sel[better] = trial[better]
            moved = (best_sel != sel[todo]).any(axis=1)
            if not moved.any():
                break
            sel[todo] = best_sel
            lam[todo], active[todo] = solve(best_sel, todo)
        return sel, lam, active


def _heaviest(lam: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Column of the active vertex with the largest weight λ, per row."""
    return np.argmax(np.where(active, lam, -np.inf), axis=1)


def _limit_extrapolation(lam: np.ndarray, active: np.ndarray, limit: float) -> np.ndarray:
    """Pull λ towards the simplex's barycentre u (u_v = 1/#active) until min λ ≥ −limit.

    λ' = u + s (λ − u) with the largest s ≤ 1 allowed: continuous in λ, never a single vertex.
    """
    k = np.maximum(active.sum(axis=1, keepdims=True), 1)
    u = np.where(active, 1.0 / k, 0.0)
    low = np.where(active, lam, np.inf).min(axis=1, keepdims=True)
    over = low < -limit  # then 1/k − low > 1/k + limit > 0
    s = np.where(over, (1.0 / k + limit) / np.where(over, 1.0 / k - low, 1.0), 1.0)
    return u + s * (lam - u)


def _barycentric(c: np.ndarray, x: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Affine coordinates λ (M, k) of x (M, d) w.r.t. the active vertices c (M, k, d).

    Solves min |Σ λ_v (c_v − x)|² + ε|λ|² subject to Σ λ_v = 1 and λ_v = 0 for inactive v (KKT
    system); for d + 1 affinely independent vertices this is the exact barycentric coordinate.
    """
    m, k, _ = c.shape
    v = np.where(active[:, :, None], c - x[:, None, :], 0.0)
    g = v @ v.transpose(0, 2, 1)
    scale = np.trace(g, axis1=1, axis2=2) / np.maximum(active.sum(axis=1), 1)
    eps = 1e-10 * scale + 1e-300
    a = np.zeros((m, k + 1, k + 1))
    a[:, :k, :k] = g
    diag = np.arange(k)
    a[:, diag, diag] += np.where(active, eps[:, None], 1.0)
    act = active.astype(np.float64)
    a[:, :k, k] = act
    a[:, k, :k] = act
    a[:, k, k] = np.where(active.any(axis=1), 0.0, 1.0)
    rhs = np.zeros((m, k + 1, 1))
    rhs[:, k, 0] = 1.0
    sol = np.linalg.solve(a, rhs)[:, :k, 0]
    return np.where(active, sol, 0.0)


def _key(model: Any, threshold: Any, n_samples: Any, seed: Any) -> tuple:
    h = hashlib.sha1(np.ascontiguousarray(model.heights_).tobytes())
    h.update(np.ascontiguousarray(model.targets_).tobytes())
    return (h.hexdigest(), repr(threshold), n_samples, seed)


def cached_singular_set(model: Any, threshold: float | str = "auto", n_samples: int | None = None,
                        seed: int | None = 0) -> SingularSet:
    """`singular_set(model, ...)`, computed once per (heights, threshold, n_samples, seed)."""
    model._check_fitted()
    store = _CACHE.setdefault(model, {})
    key = _key(model, threshold, n_samples, seed)
    if key not in store:
        store.clear()
        store[key] = singular_set(model, threshold=threshold, n_samples=n_samples, seed=seed)
    return store[key]


def generate(model: Any, n: int, seed: int | None = None, threshold: float | str = "auto",
             extension: str = "pl", n_samples: int | None = None) -> np.ndarray:
    """n new points (n, d) from a fitted SemiDiscreteOT: T̃(x) for x ~ μ drawn from `seed`.

    Args:
        model: a fitted `SemiDiscreteOT`.
        n: number of points.
        seed: seed of the source samples x.
        threshold: singular-set threshold, "auto" or θ* in radians (see `singular_set`).
        extension: "pl" (default: piecewise linear inside branches, never across the singular
            set), "naive" (piecewise linear across it: mode mixture) or "none" (T(x) = y_i:
            copies of the targets).
        n_samples: source samples for centroids and adjacencies (default ~200 per cell).
    """
    n = check_positive_int(n, "n")
    check_choice(extension, "extension", EXTENSIONS)
    model._check_fitted()
    if extension == "none":
        return model.transport(model.source_.sample(n, seed=seed))
    if len(model.targets_) == 1:
        return np.repeat(model.targets_, n, axis=0)
    sing = cached_singular_set(model, threshold, n_samples)
    return PiecewiseLinearExtension(model, sing, extension).sample(n, seed=seed)


class OTGenerator:
    """A generator with the same `fit`/`generate` interface as the baselines.

    fit(data) solves semi-discrete OT from `source` to ν = the empirical measure of the data. When
    `n_targets` is smaller than the data, ν is summarised: n_targets data points y_i drawn at
    random carry the weights ν_i = share of the data whose nearest summary point is y_i (a
    Voronoi quantisation, which keeps the mass of every region of the data); the solver's cost
    grows with the number of cells. generate(n, seed) returns T̃(x), x ~ μ, with the chosen
    extension.
    """

    def __init__(self, source: Any = "uniform", *, n_targets: int | None = None,
                 extension: str = "pl", threshold: float | str = "auto",
                 n_samples: int | None = None, seed: int | None = 0, **solver_kwargs: Any):
        self.source = source
        self.n_targets = n_targets
        self.extension = extension
        self.threshold = threshold
        self.n_samples = n_samples
        self.seed = seed
        self.solver_kwargs = solver_kwargs

    def fit(self, data: Any, verbose: bool = False) -> OTGenerator:
        from ..validation import check_points
        from .semidiscrete import SemiDiscreteOT

        check_choice(self.extension, "extension", EXTENSIONS)
        x = check_points(data, "data")
        m = check_positive_int(self.n_targets, "n_targets", allow_none=True)
        y, w = np.unique(x, axis=0, return_counts=True)  # distinct points with multiplicities
        if m is not None and m < len(y):
            y = y[np.random.default_rng(self.seed).choice(len(y), m, replace=False)]
            nearest = Assigner(y, None, "auto", "cpu")
            nearest.set_heights(-0.5 * np.sum(y**2, axis=1))  # argmax ⟨x, y⟩ − |y|²/2 = nearest
            w = np.zeros(m)
            for a in range(0, len(x), ROWS):
                w += np.bincount(nearest.assign(x[a:a + ROWS]), minlength=m)
        self.targets_, self.weights_ = y, w / w.sum()
        self.model_ = SemiDiscreteOT(self.source, seed=self.seed, **self.solver_kwargs).fit(
            y, self.weights_, verbose=verbose)
        return self

    def generate(self, n: int, seed: int | None = None) -> np.ndarray:
        """n new points T̃(x), x ~ μ drawn from `seed`."""
        if not hasattr(self, "model_"):
            raise BrenierError("this OTGenerator is not fitted yet: call fit(data)")
        return generate(self.model_, n, seed=seed, threshold=self.threshold,
                        extension=self.extension, n_samples=self.n_samples)
