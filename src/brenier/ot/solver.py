"""Monte-Carlo solvers of the semi-discrete OT problem (Gu–Luo–Sun–Yau variational principle).

Minimise the convex energy E(h) = ∫ u_h dμ − Σ_i h_i ν_i, u_h(x) = max_i ⟨x, y_i⟩ + h_i, whose
gradient is ∇E_i = μ(W_i(h)) − ν_i (cell mass minus target weight) and whose Hessian is the
weighted graph Laplacian of the power diagram, H_ij = −μ(F_ij)/|y_i − y_j| for adjacent cells
(F_ij the shared facet), H_ii = −Σ_j H_ij.

Both quantities are estimated from one pass of the top-2 kernel over a batch of source samples:

* μ(W_i) ≈ (# samples whose best cell is i) / B;
* H_ij ≈ (# samples whose two best cells are {i, j} within distance δ of their facet) /
  (2 B δ |y_i − y_j|): the strips of width δ on both sides of F_ij hold mass ≈ 2 δ μ(F_ij); the
  distance of x to F_ij is the score gap (s_1 − s_2)/|y_i − y_j|. δ is a quantile of those
  distances, so pairs of very close targets (clusters) get as thin a strip as far ones.

``newton`` (default): damped stochastic Newton, Δ = (H + R)⁻¹ ∇E by conjugate gradients (R a
small diagonal guard for cells the batch barely saw), h ← h − α Δ. A step whose measured error
grows is undone and α halved; when the error stops falling the batch doubles (the noise floor of
the mass estimate is ≈ N/B in χ²). ``adam``: Adam on the heights with an exponential average of
the iterates, checked on fresh samples — kept for comparison (see benchmarks/sdot.py).

Every batch is drawn after h was fixed, so its mass error is an unbiased, independent measurement
of the current iterate; the run stops when that χ² estimate is ≤ tol.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import cg, spsolve

from ..validation import ROWS
from .assign import Assigner

GAP_QUANTILE = 0.2  # share of samples used for the facet (Hessian) estimate
HESSIAN_MEMORY = 0.5  # weight of the previous Hessian estimate in the running average
MIN_PAIR_SAMPLES = 10  # facet samples a cell needs before its curvature estimate is trusted
LM_START = 0.5  # Levenberg–Marquardt damping λ once steps shorter than LM_ALPHA are rejected
LM_ALPHA = 0.05  # (×4 per further rejection, ÷4 per good step)
STARVED = 0.25  # a cell holding less than this share of ν_i is starved (see rescue_shifts)
RESCUE_SHARE = 0.5  # a rescued cell is raised until it alone would win this share of ν_i
RESCUE_CELLS = 1 << 16  # starved cells queried at once by rescue_shifts
RESCUE_DEFICIT = 0.2  # rescue only when starved cells lack this share of the misplaced mass
NOISE_FACTOR = 3.0  # χ² a Newton step leaves, in units of the mass-noise floor N/B (measured)
RESCUE_DRAW = 1 << 16  # source samples drawn at once by rescue_shifts


@dataclass
class BatchStats:
    """What one pass over B source samples tells about the current heights h."""

    masses: np.ndarray  # (N,) μ̂(W_i)
    batch: int
    energy: float
    pairs: sp.csr_matrix | None = None  # symmetric facet weights Ŵ_ij ≈ μ(F_ij)/|y_i − y_j|
    pair_counts: np.ndarray | None = None  # (N,) samples behind each row of `pairs`

    def mass_error(self, nu: np.ndarray) -> dict:
        return mass_error_from(self.masses, nu, self.batch)


def mass_error_from(masses: np.ndarray, nu: np.ndarray, n_samples: int) -> dict:
    """L1, max relative and unbiased χ² = Σ (μ_i − ν_i)²/ν_i from Monte-Carlo masses μ̂."""
    diff = masses - nu
    pos = nu > 0
    noise = masses * (1 - masses) / max(n_samples - 1, 1)  # E(μ̂ − μ)² estimate
    chi2 = float(np.sum((diff[pos] ** 2 - noise[pos]) / nu[pos]))
    return {
        "l1": float(np.abs(diff).sum()),
        "max_rel": float(np.max(np.abs(diff[pos]) / nu[pos])),
        "chi2": chi2,
        "n_samples": int(n_samples),
    }


def measure(assigner: Assigner, stream, h: np.ndarray, nu: np.ndarray, batch: int,
            chunk: int, hessian: bool) -> BatchStats:
    """One pass of the top-2 kernel over `batch` fresh samples at heights h."""
    n = len(nu)
    assigner.set_heights(h)
    counts = np.zeros(n, np.int64)
    u_sum = 0.0
    keys, weights = [], []
    delta = None
    done = 0
    y = assigner.targets
    while done < batch:
        m = min(chunk, batch - done)
        x = stream.draw(m)
        k = 2 if (hessian and n > 1) else 1
        idx, s = assigner.top_k(x, k)
        counts += np.bincount(idx[:, 0], minlength=n)
        u_sum += float(np.sum(s[:, 0], dtype=np.float64) + np.sum(assigner.row_offset(x)))
        if k == 2:
            a, b = idx[:, 0], idx[:, 1]
            span = np.linalg.norm(y[a] - y[b], axis=1)
            dist = (s[:, 0] - s[:, 1]).astype(np.float64) / span  # distance of x to the facet F_ab
            if delta is None:
                delta = max(float(np.quantile(dist, GAP_QUANTILE)), 1e-300)
            sel = dist < delta
            a, b = a[sel], b[sel]
            keys.append(np.minimum(a, b) * n + np.maximum(a, b))
            weights.append(1.0 / (2 * batch * delta * span[sel]))  # strips on both sides of F_ab
        done += m
    masses = counts / batch
    energy = u_sum / batch - float(h @ nu)
    if keys:
        kk, inverse, c = np.unique(np.concatenate(keys), return_inverse=True, return_counts=True)
        w = np.bincount(inverse, weights=np.concatenate(weights), minlength=len(kk))
        i, j = kk // n, kk % n
        pairs = sp.coo_matrix((np.r_[w, w], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
        pair_counts = np.bincount(np.r_[i, j], weights=np.r_[c, c], minlength=n)
        return BatchStats(masses, batch, energy, pairs, pair_counts)
    return BatchStats(masses, batch, energy)


def newton_direction(W: sp.csr_matrix, counts: np.ndarray, grad: np.ndarray, nu: np.ndarray,
                     direct: bool, damping: float = 0.0) -> np.ndarray:
    """Solve (L + R + λ D) Δ = ∇E, L = diag(W 1) − W the estimated Hessian, R a diagonal guard,
    D = diag(L + R) and λ ≥ 0 the Levenberg–Marquardt damping (λ → ∞: Jacobi-scaled gradient).

    A cell seen by fewer than MIN_PAIR_SAMPLES facet samples (empty, hidden or barely sampled)
    has an unreliable curvature estimate; its diagonal is raised to the typical c·ν_i,
    c = median(L_ii/ν_i) over the reliable cells, so it moves by bounded steps. Reliable cells
    keep their estimate (plus 1e-6·c·ν_i, which fixes the constant null vector of L).
    """
    deg = np.asarray(W.sum(axis=1)).ravel()
    reliable = (counts >= MIN_PAIR_SAMPLES) & (deg > 0) & (nu > 0)
    c = float(np.median(deg[reliable] / nu[reliable])) if reliable.any() else 1.0
    typical = c * np.maximum(nu, nu[nu > 0].min())
    guard = np.where(reliable, 0.0, np.maximum(typical - deg, 0.0)) + 1e-6 * typical
    A = (sp.diags((1.0 + damping) * (deg + guard)) - W).tocsc()
    if direct:  # planar-like graphs (d ≤ 3): sparse LU has little fill, CG would need ~√N steps
        return spsolve(A, grad)
    precond = sp.diags(1.0 / ((1.0 + damping) * (deg + guard)))
    delta, _ = cg(A, grad, rtol=1e-8, maxiter=1000, M=precond)
    return delta


def rescue_shifts(assigner: Assigner, stream, nu: np.ndarray, cells: np.ndarray, batch: int,
                  share: float = RESCUE_SHARE) -> np.ndarray:
    """Height rises t_i that give each starved cell i about `share`·ν_i of the mass on its own.

    With the other heights fixed, raising h_i by t makes W_i hold exactly the x with gap
    g_i(x) = max_{j≠i} s_j(x) − s_i(x) < t, so μ(W_i) as a function of t is the distribution
    function of g_i under μ and t_i is its (share·ν_i)-quantile, read off `batch` fresh samples.
    The Newton model cannot do this: its curvature comes from facet samples that a starved cell
    (hidden, or shrunk to almost nothing — common in high dimension) does not have, and a cell
    born at a point grows like t^d, far from the linear model. Needs heights set in `assigner`.

    The smallest gaps of cell i are the largest ⟨(x, −s₁(x)), (y_i, 1)⟩ over the samples, an
    inner-product top-k with the samples as the index and the cells as queries, so the same
    kernel does it (s₁ = best score; for the few members of a starved cell, where s₁ = s_i, the
    product is 0 ≥ any non-member's, which keeps them first as their true gap < 0 would; a cell
    that already holds share·ν_i of the batch gets t_i = 0 instead of a negative rise).
    """
    kth = np.maximum(np.ceil(share * nu[cells] * batch).astype(np.int64), 1)
    k, c = int(kth.max()), len(cells)
    smallest = np.full((c, 0), np.inf)
    done = 0
    while done < batch:
        x = stream.draw(min(RESCUE_DRAW, batch - done))
        q = assigner._queries(x).astype(np.float64)
        s1 = assigner.top_k(x, 1)[1][:, 0].astype(np.float64)  # best score, in the kernel's frame
        samples = Assigner(q, None, assigner.backend, str(assigner.device))
        samples.set_heights(-s1)
        found = np.empty((c, min(k, len(x))))
        for a in range(0, c, RESCUE_CELLS):
            part = cells[a:a + RESCUE_CELLS]
            score = samples.top_k(assigner._yc[part].astype(np.float64), found.shape[1], with_offset=True)[1]
            found[a:a + RESCUE_CELLS] = -score - assigner._hh[part, None]  # gaps g_i(x)
        both = np.hstack([smallest, found])
        smallest = np.partition(both, k - 1, axis=1)[:, :k] if both.shape[1] > k else both
        done += len(x)
    smallest.sort(axis=1)
    return smallest[np.arange(c), np.minimum(kth, smallest.shape[1]) - 1]


@dataclass
class SolverState:
    """Everything needed to resume a run exactly (saved in checkpoints)."""

    h: np.ndarray
    step: int = 0
    batch: int = 0
    alpha: float = 1.0
    damping: float = 0.0
    prev_chi2: float = np.inf
    prev_h: np.ndarray | None = None
    W: sp.csr_matrix | None = None
    adam_m: np.ndarray | None = None
    adam_v: np.ndarray | None = None
    h_avg: np.ndarray | None = None
    converged: bool = False
    history: list = field(default_factory=list)
    stream: dict | None = None
    eval_stream: dict | None = None
    elapsed: float = 0.0


def initial_heights(y: np.ndarray, source_mean: np.ndarray, source_radius: float) -> np.ndarray:
    """Voronoi start after matching scales: x ↦ nearest y in (x − m)·a, a = spread(y)/spread(μ)."""
    mean = y.mean(axis=0)
    sq = np.concatenate([np.einsum("ij,ij->i", y[b:b + ROWS] - mean, y[b:b + ROWS] - mean)
                         for b in range(0, len(y), ROWS)])  # |y_i − ȳ|², in pieces
    spread_y = float(np.sqrt(np.mean(sq))) or 1.0
    a = spread_y / max(source_radius, 1e-12)
    h = -sq / (2 * a) - (y @ source_mean - mean @ source_mean)
    return h - h.mean()


@dataclass
class Settings:
    tol: float
    max_iter: int
    lr: float
    batch: int
    max_batch: int
    chunk: int
    optimizer: str
    direct: bool = False  # solve Newton systems by sparse LU (low dimension)


def step_newton(st: SolverState, stats: BatchStats, nu: np.ndarray, cfg: Settings,
                rescue=None) -> dict:
    """Advance the stochastic Newton method by one measured batch; returns the log record.

    Step-length control from the measured χ² ratio r = χ²(h_t)/χ²(h_{t−1}), compared with the
    (1 − α)² an exact Newton step of length α gives: r > 1 undoes the step, halves α and doubles
    the batch; when even short steps (α < LM_ALPHA) are rejected, the curvature estimate itself
    is wrong (typically clustered targets whose thin facets are barely sampled) and the
    Levenberg–Marquardt damping λ rises, turning the step towards a scaled gradient step.
    r close to (1 − α)² lengthens α (up to lr) and relaxes λ; r > 0.6 shortens α, or, when α is
    already short, doubles the batch. The batch also doubles once χ² is within 4× of the
    Monte-Carlo noise floor N/B, but never beyond the NOISE_FACTOR·N/tol that the last step needs.

    Starved cells (μ̂_i < STARVED·ν_i) get a rescue step instead, `rescue(cells)` → height rises
    (see rescue_shifts), when they lack at least RESCUE_DEFICIT of the misplaced mass ½‖μ̂ − ν‖₁
    (a few stragglers are left to the guarded Newton step). A rescue is never repeated in a row
    and never undone: the Newton step that follows is judged against the χ² measured after it.
    """
    err = stats.mass_error(nu)
    n = len(nu)
    sd = np.sqrt(2 * n) / stats.batch  # s.d. of the χ² estimate
    if stats.pairs is not None:
        st.W = stats.pairs if st.W is None else (HESSIAN_MEMORY * st.W + (1 - HESSIAN_MEMORY) * stats.pairs)
    if err["chi2"] <= cfg.tol:
        st.converged = True
        return err | {"alpha": st.alpha, "rejected": False}
    if st.prev_h is not None:
        ratio = (err["chi2"] + sd) / (st.prev_chi2 + sd)
        if ratio > 1.0:  # undo the last step; a shorter, more damped one
            st.h, st.prev_h = st.prev_h, None
            st.alpha = max(st.alpha / 2, 1e-3)
            st.batch = min(2 * st.batch, cfg.max_batch)
            if st.alpha < LM_ALPHA:  # short steps still fail: the curvature estimate is wrong
                st.damping = max(4 * st.damping, LM_START)
            return err | {"alpha": st.alpha, "damping": st.damping, "rejected": True}
        expected = (1 - st.alpha) ** 2  # χ² ratio of an exact Newton step of length α
        if ratio < expected + 0.2:
            st.alpha = min(cfg.lr, st.alpha * 1.5)
            st.damping = st.damping / 4 if st.damping > 0.05 else 0.0
        elif ratio > 0.8 and st.alpha <= 0.25:  # short steps and still slow: estimates too noisy
            st.batch = min(2 * st.batch, cfg.max_batch)
        elif ratio > 0.6:
            st.alpha = max(st.alpha * 0.7, 1e-3)
    if err["chi2"] < 4 * n / st.batch:  # noise-limited: a step leaves χ² ≈ NOISE_FACTOR·N/B
        needed = int(np.ceil(NOISE_FACTOR * n / cfg.tol))
        st.batch = min(2 * st.batch, max(st.batch, needed), cfg.max_batch)
    starved = np.flatnonzero((stats.masses < STARVED * nu) & (nu > 0))
    rescued_last = bool(st.history) and st.history[-1].get("rescued", 0) > 0
    deficit = float(np.sum(nu[starved] - stats.masses[starved]))  # mass the starved cells lack
    if rescue is not None and deficit > RESCUE_DEFICIT * err["l1"] / 2 and not rescued_last:
        st.h = st.h.copy()
        st.h[starved] += rescue(starved)
        st.h -= st.h.mean()
        st.prev_h, st.prev_chi2 = None, np.inf
        return err | {"alpha": st.alpha, "damping": st.damping, "rejected": False,
                      "rescued": int(len(starved))}
    grad = stats.masses - nu
    delta = newton_direction(st.W, stats.pair_counts, grad, nu, cfg.direct, st.damping)
    st.prev_h, st.prev_chi2 = st.h, err["chi2"]
    st.h = st.h - st.alpha * delta
    st.h = st.h - st.h.mean()
    return err | {"alpha": st.alpha, "damping": st.damping, "rejected": False}


ADAM_B1, ADAM_B2, AVG_DECAY, ADAM_CHECK_EVERY = 0.9, 0.999, 0.9, 10


def step_adam(st: SolverState, stats: BatchStats, nu: np.ndarray, cfg: Settings) -> dict:
    """Adam on the heights with an exponential average of iterates (returned as the answer)."""
    err = stats.mass_error(nu)
    grad = stats.masses - nu
    t = st.step + 1
    st.adam_m = ADAM_B1 * st.adam_m + (1 - ADAM_B1) * grad
    st.adam_v = ADAM_B2 * st.adam_v + (1 - ADAM_B2) * grad**2
    mhat = st.adam_m / (1 - ADAM_B1**t)
    vhat = st.adam_v / (1 - ADAM_B2**t)
    st.h = st.h - cfg.lr * mhat / (np.sqrt(vhat) + 1e-12 * nu.max())
    st.h -= st.h.mean()
    st.h_avg = AVG_DECAY * st.h_avg + (1 - AVG_DECAY) * st.h
    return err | {"alpha": cfg.lr, "rejected": False}


def run(st: SolverState, assigner: Assigner, stream, eval_stream, nu: np.ndarray, cfg: Settings,
        on_step=None, checkpoint=None) -> SolverState:
    """Iterate until χ² ≤ tol or max_iter steps; `checkpoint(st)` is called after each step."""
    t0 = time.perf_counter() - st.elapsed
    newton = cfg.optimizer == "newton"
    while st.step < cfg.max_iter and not st.converged:
        stats = measure(assigner, stream, st.h, nu, st.batch, cfg.chunk, hessian=newton)
        batch_used = st.batch
        if newton:
            def rescue(cells, batch=batch_used):
                return rescue_shifts(assigner, stream, nu, cells, batch)
            rec = step_newton(st, stats, nu, cfg, rescue)
        else:
            rec = step_adam(st, stats, nu, cfg)
        if not newton and (st.step + 1) % ADAM_CHECK_EVERY == 0:
            check = measure(assigner, eval_stream, st.h_avg, nu, batch_used, cfg.chunk, False)
            cerr = check.mass_error(nu)
            if cerr["chi2"] <= cfg.tol:
                st.h, st.converged = st.h_avg.copy(), True
                rec = rec | cerr
            elif cerr["chi2"] > 0.9 * st.prev_chi2:  # the averaged iterate stalled: less noise
                st.batch = min(2 * st.batch, cfg.max_batch)
            st.prev_chi2 = min(st.prev_chi2, cerr["chi2"])
        st.step += 1
        st.elapsed = time.perf_counter() - t0
        rec = {"step": st.step, "batch": batch_used, "energy": stats.energy,
               "grad_norm": float(np.linalg.norm(stats.masses - nu)), "seconds": st.elapsed} | rec
        st.history.append(rec)
        st.stream = stream.state()
        st.eval_stream = eval_stream.state()
        if checkpoint is not None:
            checkpoint(st)
        if on_step is not None:
            on_step(rec)
    if not newton and not st.converged:
        st.h = st.h_avg.copy()
    return st
