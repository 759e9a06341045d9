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

With ``extension="pl"`` (default) a simplex never has a singular edge: its vertices are cells v
whose pair with the cell of x, i₀, is regular (θ̂_{i₀v} ≤ θ*, see `brenier.ot.singular`) and are
pairwise regular — the walk starts from the nearest such vertices (taken greedily, nearest first)
and only swaps in candidates regular to the vertices that stay. So T̃ is continuous inside a
branch and jumps across the singular set: samples fill each branch of the support of ν and never
the gaps between branches. ``extension="naive"`` ignores the singular set and interpolates across
it, which puts samples in the gaps (mode mixture).

Near the edge of a branch x lies beyond the centroids of the branch (a boundary cell's centroid is
inside the cell): there one λ_v is negative and T̃ continues the affine piece a little past the
branch's outer targets, as a continuous map to a continuous density would. The extrapolation is
bounded: when min λ < −`max_extrapolation` (a degenerate or distant simplex) λ is pulled towards
the simplex's barycentre u, λ ← u + s(λ − u) with the largest s keeping min λ ≥ −max_extrapolation,
which never collapses onto one vertex (no copies of targets).

In more than three dimensions the extrapolation is also kept on the sampled support ("pl" and
"naive"): where x lies outside its simplex, T̃(x) may lie at most r* from the nearest target, r*
the `support_quantile`-quantile (default 0.4) of the targets' own nearest-neighbour spacing,
i.e. no further from the data than a typical data point is from its nearest neighbour.
Beyond r*, λ is pulled towards u the same way, λ ← u + s(λ − u) with the largest s ∈ [0, 1]
(bisection) that brings T̃(x) within r*. In d ≤ 3 the walk finds a simplex holding x for most
points, extrapolation happens only at the edges of branches and `max_extrapolation` alone bounds
it (the support bound would thin the outer tail of each mode a little more; `support_quantile`
turns it on). In more dimensions extrapolation is the rule: cell centroids lie inside their
cells, far inside the cube, so nearly every x lies outside the simplices of its nearest
centroids and T̃ extrapolates; unbounded, that leaves the data, and no extrapolation at all
decodes to near-copies of the training set (docs/design.md).

Where fewer than d + 1 admissible, pairwise regular centroids are among the candidates (a thin
part of a branch, or a strict θ*) the search is widened 4×, and the simplex may keep fewer
vertices (a segment, a face): T̃(x) is still a blend of at least two targets. Only a point with no
usable neighbourhood — fewer than two admissible, pairwise regular centroids, i.e. i₀ is an
isolated target whose every pair is singular — gets the plain map T(x) = y_{i₀}, a copy.

Source points. T sends whole cells to targets and T̃ is piecewise affine, so a generated sample is
only as even as the source sample it transports: with n i.i.d. points x each cell W_i receives a
binomial count n ν_i ± √(n ν_i (1 − ν_i)), and at a few thousand samples this sampling noise,
not the map, dominates the distance between the samples and ν (sliced W2 of fresh data to
fresh data is no lower). Scrambled Sobol points (`brenier.measures.UniformCube(qmc=True)`) cover
the cube with discrepancy O((log n)^d / n) instead of O(n^{−1/2}): every cell and every region of
the target gets close to its share of the n samples, while each point is still uniform on the
cube and the set is still random (the scrambling is seeded by `seed`). ``qmc="auto"`` (the
default of `generate`, `PiecewiseLinearExtension.sample`, `SemiDiscreteOT.generate`, `brenier generate` and
`brenier.generators.ot.OTGenerator`) draws Sobol points when the source is a `UniformCube` and
i.i.d. points otherwise; ``qmc=False`` forces i.i.d. points, ``qmc=True`` Sobol points (an error
for other sources). Any n is allowed (the first n points of the sequence; powers of two are
balanced exactly).
"""

from __future__ import annotations

import copy
import hashlib
import weakref
from typing import Any

import numpy as np

from ..analysis.neighbours import nearest_distances
from ..measures import UniformCube
from ..validation import BrenierError, check_choice, check_fitted, check_points, check_positive_int, like
from .assign import Assigner
from .cells.statistics import NOT_FITTED
from .singular import SingularSet, singular_set

EXTENSIONS = ("pl", "naive", "none")
CHUNK = 1 << 14
SUPPORT_QUANTILE = 0.4  # r*: this quantile of the targets' nearest-neighbour spacing (digits.py)
SUPPORT_MIN_DIM = 3  # support_quantile="auto" bounds extrapolation above this dimension
SUPPORT_BISECTIONS = 10  # s is found to 2^-10

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class PiecewiseLinearExtension:
    """The extended map T̃ of a fitted SemiDiscreteOT.

    Args:
        model: a fitted `SemiDiscreteOT`.
        singular: its `SingularSet`: the rule, and the cell centroids c_i of its statistics.
        extension: "pl" (singular-aware), "naive" (ignores the singular set) or "none" (T itself).
        n_candidates: nearest centroids examined per point (default 3(d + 1)).
        max_steps: vertex swaps of the simplex walk (default d + 2).
        max_extrapolation: how negative a barycentric weight may be (extrapolation bound).
        support_quantile: r* (the furthest an extrapolated T̃(x) may lie from a target) as a
            quantile of the targets' nearest-neighbour spacing ("pl" and "naive"); None: no such
            bound; "auto": 0.4 in d > 3, no bound in d ≤ 3.
    """

    def __init__(self, model: Any, singular: SingularSet, extension: str = "pl",
                 n_candidates: int | None = None, max_steps: int | None = None,
                 max_extrapolation: float = 1.0, support_quantile: float | str | None = "auto"):
        check_fitted(model, "heights_", NOT_FITTED)
        self.model = model
        self.singular = singular
        self.extension = check_choice(extension, "extension", EXTENSIONS)
        if not (isinstance(max_extrapolation, (int, float)) and max_extrapolation >= 0):
            raise BrenierError(f"max_extrapolation: expected a number >= 0, got {max_extrapolation!r}")
        self.max_extrapolation = float(max_extrapolation)
        if isinstance(support_quantile, str) and support_quantile == "auto":
            support_quantile = SUPPORT_QUANTILE if model.targets_.shape[1] > SUPPORT_MIN_DIM else None
        if support_quantile is not None and not (isinstance(support_quantile, (int, float))
                                                 and 0 < support_quantile <= 1):
            raise BrenierError(f"support_quantile: expected 'auto', a number in (0, 1] or None, "
                               f"got {support_quantile!r}")
        self.support_radius = None
        if self.extension != "none" and support_quantile is not None and len(model.targets_) > 1:
            y = model.targets_
            self.support_radius = float(np.quantile(
                nearest_distances(y, y, exclude_self=True), support_quantile))
            self._nearest_target = Assigner(y, model.source_.mean(), model.backend, model.device)
            self._nearest_target.set_heights(-0.5 * np.sum(y**2, axis=1))
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
        xs = check_points(x, "x", dim=self.model.targets_.shape[1], min_rows=0)
        out = np.empty_like(xs)
        for a in range(0, len(xs), CHUNK):
            cells, lam = self.weights(xs[a:a + CHUNK])
            out[a:a + CHUNK] = np.einsum("mk,mkd->md", lam, self.model.targets_[cells])
        return like(out, x)

    def sample(self, n: int, seed: int | None = None, qmc: bool | str = "auto") -> np.ndarray:
        """n new points T̃(x), x ~ μ drawn from `seed` (scrambled Sobol points if `qmc`, see
        `source_sample`)."""
        n = check_positive_int(n, "n")
        return self(source_sample(self.model.source_, n, seed=seed, qmc=qmc))

    def weights(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cells (M, k), λ (M, k)): the simplex of each point and its weights (0 if unused)."""
        x = np.asarray(x, np.float64)
        i0 = self.model.top_k(x, 1)[0][:, 0]
        if self.extension == "none" or self.simplex < 1:
            return i0[:, None], np.ones((len(x), 1))
        cells, lam, active = self._simplex(x, i0, self.n_candidates)
        few = np.flatnonzero(active.sum(axis=1) < self.simplex)
        wider = min(4 * self.n_candidates, len(self._cells))
        if len(few) and wider > self.n_candidates:  # a thin part of a branch: look further
            cells[few], lam[few], active[few] = self._simplex(x[few], i0[few], wider)
        lost = active.sum(axis=1) < 2  # no usable neighbourhood (an isolated target): the plain map
        cells[lost, 0], lam[lost], active[lost] = i0[lost], 0.0, False
        lam[lost, 0], active[lost, 0] = 1.0, True
        lam = _limit_extrapolation(lam, active, self.max_extrapolation)
        if self.support_radius is not None:
            lam = self._keep_on_support(cells, lam, active)
        return cells, lam

    def _keep_on_support(self, cells: np.ndarray, lam: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Where x is extrapolated (some λ_v < 0) and T̃(x) lies beyond r* from every target, pull λ
        towards the barycentre u of its simplex, λ ← u + s(λ − u) with the largest s ∈ [0, 1]
        (bisection) putting T̃(x) within r* of a target (s = 0 if none does)."""
        y = self.model.targets_
        r2 = self.support_radius**2

        def off_support(weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
            z = np.einsum("mk,mkd->md", weights, y[cells[rows]])
            j = self._nearest_target.top_k(z, 1)[0][:, 0]
            return np.sum((z - y[j]) ** 2, axis=1) > r2

        rows = np.flatnonzero((lam < 0).any(axis=1))  # only extrapolation is bounded
        if len(rows) == 0:
            return lam
        rows = rows[off_support(lam[rows], rows)]
        if len(rows) == 0:
            return lam
        u = _barycentre(active[rows])[1]
        step = lam[rows] - u
        lo, hi = np.zeros(len(rows)), np.ones(len(rows))
        for _ in range(SUPPORT_BISECTIONS):
            mid = 0.5 * (lo + hi)
            off = off_support(u + mid[:, None] * step, rows)
            hi, lo = np.where(off, mid, hi), np.where(off, lo, mid)
        lam = lam.copy()
        lam[rows] = u + lo[:, None] * step
        return lam

    def _simplex(self, x: np.ndarray, i0: np.ndarray, k: int):
        """(cells, λ, active) of the simplex chosen among the k centroids nearest to x."""
        cand, ok = self._candidates(x, i0, k)
        sel, lam, active = self._walk(x, cand, ok)
        return np.take_along_axis(cand, sel, axis=1), lam, active

    def _candidates(self, x: np.ndarray, i0: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest centroids' cells, admissible ones first (by distance), and the mask."""
        cand = self._cells[self._nearest.top_k(x, k)[0]]
        ok = np.ones(cand.shape, bool)
        if self.extension == "pl":
            ok = ~self.singular.classify(i0[:, None], cand)
        order = np.argsort(~ok, axis=1, kind="stable")
        return np.take_along_axis(cand, order, axis=1), np.take_along_axis(ok, order, axis=1)

    def _regular_subset(self, cells: np.ndarray, ok: np.ndarray, limit: int) -> np.ndarray:
        """Mask (M, K): per row, in column order, the admissible (ok) vertices that are regular to
        every vertex taken before them, at most `limit` ("naive": the first `limit` admissible)."""
        m = len(cells)
        keep = np.zeros(cells.shape, bool)
        taken = np.zeros((m, limit), np.int64)
        count = np.zeros(m, np.int64)
        for j in range(cells.shape[1]):
            r = np.flatnonzero(ok[:, j] & (count < limit))
            if len(r) == 0:
                if (count == limit).all():
                    break
                continue
            if self.extension == "pl":
                sing = self.singular.classify(cells[r, j][:, None], taken[r])
                r = r[~(sing & (np.arange(limit) < count[r, None])).any(axis=1)]
            keep[r, j] = True
            taken[r, count[r]] = cells[r, j]
            count[r] += 1
        return keep

    def _walk(self, x: np.ndarray, cand: np.ndarray, ok: np.ndarray):
        """Choose d + 1 of the candidate centroids whose simplex holds x (or comes closest): start
        from the nearest admissible ones that are pairwise regular ("pl") and swap vertices only
        for candidates that keep every edge regular; fewer vertices where no such d + 1 exist."""
        m, k = len(x), self.simplex
        c = self.singular.centroids
        keep = self._regular_subset(cand, ok, k)
        sel = np.argsort(~keep, axis=1, kind="stable")[:, :k]
        active = np.take_along_axis(keep, sel, axis=1)

        def solve(sel, r, act):
            return _barycentric(c[cand[r[:, None], sel]], x[r], act)

        lam = solve(sel, np.arange(m), active)
        slots = np.arange(k)
        for _ in range(self.max_steps):
            score = np.where(active, lam, np.inf).min(axis=1)
            todo = np.flatnonzero((score < 0) & active.all(axis=1))
            if len(todo) == 0:
                break
            worst = np.argmin(lam[todo], axis=1)
            now = sel[todo]
            stay = slots != worst[:, None]
            best, best_sel = score[todo], now.copy()
            full = np.ones((len(todo), k), bool)
            for j in range(cand.shape[1]):
                fresh = ok[todo, j] & ~(now == j).any(axis=1)
                if self.extension == "pl" and fresh.any():  # regular to the vertices that stay
                    sing = self.singular.classify(cand[todo, j][:, None], cand[todo[:, None], now])
                    fresh &= ~(sing & stay).any(axis=1)
                v = np.flatnonzero(fresh)
                if len(v) == 0:
                    continue
                trial = now[v].copy()
                trial[np.arange(len(v)), worst[v]] = j
                st = solve(trial, todo[v], full[v]).min(axis=1)
                better = st > best[v] + 1e-12
                best[v[better]] = st[better]
                best_sel[v[better]] = trial[better]
            moved = (best_sel != sel[todo]).any(axis=1)
            if not moved.any():
                break
            sel[todo] = best_sel
            lam[todo] = solve(best_sel, todo, full)
        return sel, lam, active


def _barycentre(active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k (M, 1), u (M, K)): the number of active vertices (at least 1) and the weights
    u_v = 1/k (0 for inactive v) of each simplex's barycentre."""
    k = np.maximum(active.sum(axis=1, keepdims=True), 1)
    return k, np.where(active, 1.0 / k, 0.0)


def _limit_extrapolation(lam: np.ndarray, active: np.ndarray, limit: float) -> np.ndarray:
    """Pull λ towards the simplex's barycentre u (u_v = 1/#active) until min λ ≥ −limit.

    λ' = u + s (λ − u) with the largest s ≤ 1 allowed: continuous in λ, never a single vertex.
    """
    k, u = _barycentre(active)
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


def use_qmc(qmc: Any, source: Any) -> bool:
    """Whether to draw the source points as scrambled Sobol points: `qmc` True, False or "auto"
    (Sobol for a `UniformCube` source, i.i.d. otherwise)."""
    cube = isinstance(source, UniformCube)
    if isinstance(qmc, str) and qmc == "auto":
        return cube
    if not isinstance(qmc, (bool, np.bool_)):
        raise BrenierError(f"qmc: expected True, False or 'auto', got {qmc!r}")
    if qmc and not cube:
        raise BrenierError(f"qmc: scrambled Sobol points need a UniformCube source, got {source!r} "
                           "(use qmc=False or 'auto')")
    return bool(qmc)


def source_sample(source: Any, n: int, seed: int | None = None, qmc: Any = "auto") -> np.ndarray:
    """n points x ~ μ from `seed`: the first n scrambled Sobol points of the source cube (the
    scrambling seeded by `seed`) when `use_qmc(qmc, source)`, else n i.i.d. points."""
    sobol = use_qmc(qmc, source)
    if sobol != bool(getattr(source, "qmc", False)):
        source = copy.copy(source)  # the same cube, the other sampler
        source.qmc = sobol
    return source.sample(n, seed=seed)


def _key(model: Any, threshold: Any, n_samples: Any, seed: Any) -> tuple:
    h = hashlib.sha1(np.ascontiguousarray(model.heights_).tobytes())
    h.update(np.ascontiguousarray(model.targets_).tobytes())
    return (h.hexdigest(), repr(threshold), n_samples, seed)


def cached_singular_set(model: Any, threshold: float | str = "auto", n_samples: int | None = None,
                        seed: int | None = 0) -> SingularSet:
    """`singular_set(model, ...)`, computed once per (heights, threshold, n_samples, seed)."""
    check_fitted(model, "heights_", NOT_FITTED)
    store = _CACHE.setdefault(model, {})
    key = _key(model, threshold, n_samples, seed)
    if key not in store:
        store.clear()
        store[key] = singular_set(model, threshold=threshold, n_samples=n_samples, seed=seed)
    return store[key]


def generate(model: Any, n: int, seed: int | None = None, threshold: float | str = "auto",
             extension: str = "pl", n_samples: int | None = None,
             qmc: bool | str = "auto") -> np.ndarray:
    """n new points (n, d) from a fitted SemiDiscreteOT: T̃(x) for x ~ μ drawn from `seed`.

    Args:
        model: a fitted `SemiDiscreteOT`.
        n: number of points.
        seed: seed of the source samples x.
        threshold: singular-set threshold, "auto" or θ* in radians (see `singular_set`).
        extension: "pl" (default: piecewise linear inside branches, never across the singular
            set), "naive" (piecewise linear across it: mode mixture) or "none" (T(x) = y_i:
            copies of the targets).
        n_samples: source samples for centroids and adjacencies (default: the exact power
            diagram when the model was solved on it, else ~200 samples per cell).
        qmc: draw x as scrambled Sobol points (True), i.i.d. (False) or "auto" (default: Sobol
            when the source is a `UniformCube`); see the module docstring.
    """
    n = check_positive_int(n, "n")
    check_choice(extension, "extension", EXTENSIONS)
    check_fitted(model, "heights_", NOT_FITTED)
    use_qmc(qmc, model.source_)
    if extension == "none":
        return model.transport(source_sample(model.source_, n, seed=seed, qmc=qmc))
    if len(model.targets_) == 1:
        return np.repeat(model.targets_, n, axis=0)
    sing = cached_singular_set(model, threshold, n_samples)
    return PiecewiseLinearExtension(model, sing, extension).sample(n, seed=seed, qmc=qmc)

