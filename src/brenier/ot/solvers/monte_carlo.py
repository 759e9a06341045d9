"""Monte-Carlo solvers of the semi-discrete OT problem (Gu–Luo–Sun–Yau variational principle).

Minimise the convex energy E(h) = ∫ u_h dμ − Σ_i h_i ν_i, u_h(x) = max_i ⟨x, y_i⟩ + h_i, whose
gradient is ∇E_i = μ(W_i(h)) − ν_i (cell mass minus target weight) and whose Hessian is the
weighted graph Laplacian of the power diagram, H_ij = −μ(F_ij)/|y_i − y_j| for adjacent cells
(F_ij the shared facet), H_ii = −Σ_j H_ij.

Both quantities are estimated from one pass of the top-2 kernel over a batch of source samples:

* μ(W_i) ≈ (# samples whose best cell is i) / B;
* w_ij ≈ (# samples whose two best cells are {i, j} within distance δ of their facet) /
  (2 B δ |y_i − y_j|): the strips of width δ on both sides of F_ij hold mass ≈ 2 δ μ(F_ij); the
  distance of x to F_ij is the score gap (s_1 − s_2)/|y_i − y_j|. δ is a quantile of those
  distances, so pairs of very close targets (clusters) get as thin a strip as far ones
  (`brenier.ot.cells.statistics`).

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

from ..assign import Assigner
from ..cells.statistics import facet_weights, sampled_statistics
from ..result import SolveResult, mass_error, step_record
from .linalg import sampled_newton_direction

GAP_QUANTILE = 0.2  # share of samples used for the facet (Hessian) estimate
HESSIAN_MEMORY = 0.5  # weight of the previous Hessian estimate in the running average
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
    weights: sp.csr_matrix | None = None  # symmetric Hessian weights ŵ_ij ≈ μ(F_ij)/|y_i − y_j|
    weight_counts: np.ndarray | None = None  # (N,) strip samples behind each row of `weights`

    def mass_error(self, nu: np.ndarray) -> dict:
        return mass_error(self.masses, nu, self.batch)


def measure(assigner: Assigner, stream, h: np.ndarray, nu: np.ndarray, batch: int,
            chunk: int, hessian: bool) -> BatchStats:
    """One pass of the top-2 kernel (`brenier.ot.cells.statistics`) over `batch` fresh samples
    at heights h: masses, E(h) and, with `hessian`, the Hessian weights."""
    assigner.set_heights(h)
    stats = sampled_statistics(assigner, stream, batch, chunk=chunk, strip_quantile=GAP_QUANTILE,
                               centroids=False, facets=hessian)
    energy = stats.potential_mean - float(h @ nu)
    if hessian and len(nu) > 1:
        w, counts = facet_weights(stats, assigner.targets)
        return BatchStats(stats.masses, batch, energy, w, counts)
    return BatchStats(stats.masses, batch, energy)


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
        q = assigner.queries(x).astype(np.float64)
        s1 = assigner.top_k(x, 1)[1][:, 0].astype(np.float64)  # best score, in the kernel's frame
        samples = Assigner(q, None, assigner.backend, str(assigner.device))
        samples.set_heights(-s1)
        found = np.empty((c, min(k, len(x))))
        for a in range(0, c, RESCUE_CELLS):
            part = cells[a:a + RESCUE_CELLS]
            cells_as_queries = assigner.centred_targets[part].astype(np.float64)
            score = samples.top_k(cells_as_queries, found.shape[1], with_offset=True)[1]
            found[a:a + RESCUE_CELLS] = -score - assigner.kernel_heights[part, None]  # gaps g_i(x)
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
    w: sp.csr_matrix | None = None  # running Hessian weights ŵ_ij
    adam_m: np.ndarray | None = None
    adam_v: np.ndarray | None = None
    h_avg: np.ndarray | None = None
    converged: bool = False
    history: list = field(default_factory=list)
    stream: dict | None = None
    eval_stream: dict | None = None
    elapsed: float = 0.0


@dataclass(frozen=True)
class Settings:
    """Monte-Carlo solver settings, resolved once from the estimator's arguments."""

    tol: float
    max_iter: int
    lr: float
    batch: int
    max_batch: int
    chunk: int
    optimizer: str
    direct: bool = False  # solve Newton systems by sparse LU (low dimension)


def step_newton(st: SolverState, stats: BatchStats, nu: np.ndarray, cfg: Settings,
                rescue=None) -> tuple[dict, dict]:
    """Advance the stochastic Newton method by one measured batch; returns (mass errors, detail).

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
    if stats.weights is not None:
        fresh = stats.weights
        st.w = fresh if st.w is None else HESSIAN_MEMORY * st.w + (1 - HESSIAN_MEMORY) * fresh
    if err["chi2"] <= cfg.tol:
        st.converged = True
        return err, {"damping": st.damping, "rejected": False}
    if st.prev_h is not None:
        ratio = (err["chi2"] + sd) / (st.prev_chi2 + sd)
        if ratio > 1.0:  # undo the last step; a shorter, more damped one
            st.h, st.prev_h = st.prev_h, None
            st.alpha = max(st.alpha / 2, 1e-3)
            st.batch = min(2 * st.batch, cfg.max_batch)
            if st.alpha < LM_ALPHA:  # short steps still fail: the curvature estimate is wrong
                st.damping = max(4 * st.damping, LM_START)
            return err, {"damping": st.damping, "rejected": True}
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
    rescued_last = bool(st.history) and st.history[-1]["detail"].get("rescued", 0) > 0
    deficit = float(np.sum(nu[starved] - stats.masses[starved]))  # mass the starved cells lack
    if rescue is not None and deficit > RESCUE_DEFICIT * err["l1"] / 2 and not rescued_last:
        st.h = st.h.copy()
        st.h[starved] += rescue(starved)
        st.h -= st.h.mean()
        st.prev_h, st.prev_chi2 = None, np.inf
        return err, {"damping": st.damping, "rejected": False, "rescued": int(len(starved))}
    grad = stats.masses - nu
    delta = sampled_newton_direction(st.w, stats.weight_counts, grad, nu, cfg.direct, st.damping)
    st.prev_h, st.prev_chi2 = st.h, err["chi2"]
    st.h = st.h - st.alpha * delta
    st.h = st.h - st.h.mean()
    return err, {"damping": st.damping, "rejected": False}


ADAM_B1, ADAM_B2, AVG_DECAY, ADAM_CHECK_EVERY = 0.9, 0.999, 0.9, 10


def step_adam(st: SolverState, stats: BatchStats, nu: np.ndarray, cfg: Settings) -> tuple[dict, dict]:
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
    return err, {"rejected": False}


def run(st: SolverState, assigner: Assigner, stream, eval_stream, nu: np.ndarray, cfg: Settings,
        on_step=None, checkpoint=None) -> SolveResult:
    """Iterate until χ² ≤ tol or max_iter steps; `checkpoint(st)` is called after each step.

    Each record (brenier.ot.result) holds the mass errors of the batch drawn at the step's
    heights, step_length = α after the step (Newton) or the learning rate (Adam), and in `detail`
    the gradient norm, damping λ, whether the step was rejected and how many cells were rescued.
    """
    t0 = time.perf_counter() - st.elapsed
    newton = cfg.optimizer == "newton"
    while st.step < cfg.max_iter and not st.converged:
        stats = measure(assigner, stream, st.h, nu, st.batch, cfg.chunk, hessian=newton)
        batch_used = st.batch
        if newton:
            def rescue(cells, batch=batch_used):
                return rescue_shifts(assigner, stream, nu, cells, batch)
            err, detail = step_newton(st, stats, nu, cfg, rescue)
        else:
            err, detail = step_adam(st, stats, nu, cfg)
        if not newton and (st.step + 1) % ADAM_CHECK_EVERY == 0:
            check = measure(assigner, eval_stream, st.h_avg, nu, batch_used, cfg.chunk, False)
            cerr = check.mass_error(nu)
            if cerr["chi2"] <= cfg.tol:
                st.h, st.converged = st.h_avg.copy(), True
                err = cerr
            elif cerr["chi2"] > 0.9 * st.prev_chi2:  # the averaged iterate stalled: less noise
                st.batch = min(2 * st.batch, cfg.max_batch)
            st.prev_chi2 = min(st.prev_chi2, cerr["chi2"])
        st.step += 1
        st.elapsed = time.perf_counter() - t0
        detail = {"grad_norm": float(np.linalg.norm(stats.masses - nu)), "min_mass": err["min_mass"]} | detail
        rec = step_record(detail, step=st.step, chi2=err["chi2"], max_rel=err["max_rel"], l1=err["l1"],
                          energy=stats.energy, step_length=st.alpha if newton else cfg.lr,
                          batch=batch_used, seconds=st.elapsed)
        st.history.append(rec)
        st.stream = stream.state()
        st.eval_stream = eval_stream.state()
        if checkpoint is not None:
            checkpoint(st)
        if on_step is not None:
            on_step(rec)
    if not newton and not st.converged:
        st.h = st.h_avg.copy()
    return SolveResult(st.h - st.h.mean(), st.step, bool(st.converged), st.history,
                       method="monte-carlo")
