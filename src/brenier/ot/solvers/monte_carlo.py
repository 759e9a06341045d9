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
grows is undone. α and the next batch B come from an error model (`step_newton`, `next_batch`):
a batch's masses carry noise n ≈ N/B in χ², a step of length α leaves ≈ (1 − α)²χ² + α²n, so
α = χ²/(χ² + n) and each batch is just large enough for the next step's goal; far from the
solution, or when the model fails, α is line-searched on replayed samples. ``adam``: Adam on
the heights with an exponential average of the iterates, checked on fresh samples — kept for
comparison (see benchmarks/sdot.py).

Every batch is drawn after h was fixed, so its mass error is an unbiased, independent measurement
of the current iterate; the run stops when that χ² estimate is ≤ tol.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..assign import Assigner
from ..cells.bridges import bridge_weights, components_to_bridge
from ..cells.statistics import facet_weights, sampled_statistics
from ..result import SolveResult, mass_error, sampling_noise, step_record
from .linalg import sampled_newton_direction

GAP_QUANTILE = 0.2  # share of samples used for the facet (Hessian) estimate
HESSIAN_MEMORY = 0.5  # weight of the previous Hessian estimate in the running average
LM_START = 0.5  # Levenberg–Marquardt damping λ after a failed line search or an undone step
LM_MAX = 1e4  # (λ → ∞ is a Jacobi-scaled gradient step: beyond this only the step length shrinks)
LM_RELAX = 0.8  # λ ÷ 4 after a step that cut χ² below this share (or passed a line search at once)
STARVED = 0.25  # a cell holding less than this share of ν_i is starved (see rescue_shifts)
RESCUE_SHARE = 0.5  # a rescued cell is raised until it alone would win this share of ν_i
RESCUE_CELLS = 1 << 16  # starved cells queried at once by rescue_shifts
RESCUE_DEFICIT = 0.2  # rescue only when starved cells lack this share of the misplaced mass
LS_NOISE = 10.0  # line-search while χ² > LS_NOISE × the batch's noise (non-linear regime)
LS_TRIALS = 6  # step lengths α, α/2, … tried by one line search
TARGET_GAIN = 0.3  # next_batch: the noise of the next batch may leave this share of the error
CERT_SHARE = 0.7  # a step expected to leave χ² ≤ CERT_SHARE·tol is followed by a certifying batch
CERT_SD = 0.1  # the batch that should certify χ² ≤ tol measures it with s.d. ≤ CERT_SD·tol
FIRST_CONTRACTION = 0.5  # χ² ratio assumed for a step before one was measured
LS_MIN_SAMPLES = 1 << 14  # fewest replayed samples of a line search
BATCH_GROWTH = 8  # the batch grows at most this much per step
HESSIAN_PER_CELL = 64  # facet (Hessian) samples per cell and step; the masses use the whole batch
RESCUE_DRAW = 1 << 16  # source samples drawn at once by rescue_shifts
RESCUE_HITS = 64  # samples a rescue expects in the share of the smallest starved cell


@dataclass
class BatchStats:
    """What one pass over B source samples tells about the current heights h."""

    masses: np.ndarray  # (N,) μ̂(W_i)
    batch: int
    energy: float
    weights: sp.csr_matrix | None = None  # symmetric Hessian weights ŵ_ij ≈ μ(F_ij)/|y_i − y_j|
    weight_counts: np.ndarray | None = None  # (N,) strip samples behind each row of `weights`
    drawn_from: dict | None = None  # the stream's state before the batch: replays draw it again

    def mass_error(self, nu: np.ndarray) -> dict:
        return mass_error(self.masses, nu, self.batch)

    def noise(self, nu: np.ndarray) -> float:
        """n = E[χ̂²_raw] − χ² = Σ_i μ_i(1 − μ_i)/(ν_i B): the χ² that the sampling noise of
        these masses alone carries (≈ (N − 1)/B), estimated from μ̂."""
        return float(np.sum(sampling_noise(self.masses, nu, self.batch)))


def measure(assigner: Assigner, stream, h: np.ndarray, nu: np.ndarray, batch: int,
            chunk: int, hessian: bool, replay=None) -> BatchStats:
    """One pass of the kernel (`brenier.ot.cells.statistics`) over `batch` fresh samples at
    heights h: masses and E(h) from all of them; with `hessian`, the Hessian weights from the
    first HESSIAN_PER_CELL·N (top-2 costs more than top-1, and the estimate is averaged over
    steps), plus the facets between clusters that the top-2 strips miss
    (`brenier.ot.cells.bridges`, drawing the samples again from `replay`) when the sampled
    facet graph falls apart."""
    assigner.set_heights(h)
    drawn_from = stream.state()
    stats = sampled_statistics(assigner, stream, batch, chunk=chunk, strip_quantile=GAP_QUANTILE,
                               centroids=False, facets=hessian,
                               facet_samples=max(HESSIAN_PER_CELL * len(nu), chunk))
    energy = stats.potential_mean - float(h @ nu)
    if not hessian or len(nu) < 2:
        return BatchStats(stats.masses, batch, energy, drawn_from=drawn_from)
    w, counts = facet_weights(stats, assigner.targets)
    label, groups = components_to_bridge(w)
    if len(groups) and replay is not None:  # clusters whose facets to each other were missed
        bridges, extra = bridge_weights(assigner, replay, drawn_from, stats.facet_samples, chunk, h,
                                        label, groups, stats.strip_width)
        w, counts = (w + bridges).tocsr(), counts + extra
    return BatchStats(stats.masses, batch, energy, w, counts, drawn_from)


def replay_chi2(assigner: Assigner, stream, state: dict, h: np.ndarray, nu: np.ndarray, n: int,
                chunk: int) -> float:
    """Raw χ² of the masses at heights h over the n samples `stream` drew from `state` on (the
    same samples for every h: differences between heights are free of sampling noise)."""
    stream.set_state(state)
    assigner.set_heights(h)
    hits = np.zeros(len(nu), np.int64)
    done = 0
    while done < n:
        m = min(chunk, n - done)
        hits += np.bincount(assigner.assign(stream.draw(m)), minlength=len(nu))
        done += m
    return mass_error(hits / n, nu)["chi2"]


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
    prev_sd: float = 0.0  # s.d. of prev_chi2
    contraction: float = np.nan  # last measured χ²(h_t)/χ²(h_{t−1}) of an accepted step

    def raise_damping(self) -> None:
        """λ ← min(max(4λ, LM_START), LM_MAX): the Newton model failed here."""
        self.damping = min(max(4 * self.damping, LM_START), LM_MAX)

    def relax_damping(self) -> None:
        """λ ← λ/4 (0 once below 0.05): the model predicted well."""
        self.damping = self.damping / 4 if self.damping > 0.05 else 0.0


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


def chi2_sd(n_cells: int, batch: int, chi2: float) -> float:
    """S.d. of the unbiased χ² estimate from `batch` samples: √(2N/B² + 4χ²/B) (the square of
    the noise, and its product with the error)."""
    return float(np.sqrt(2 * n_cells / batch**2 + 4 * max(chi2, 0.0) / batch))


def certify_batch(n_cells: int, tol: float, chi2: float) -> int:
    """Samples whose χ² estimate has s.d. ≤ CERT_SD·tol at χ² (solves chi2_sd = CERT_SD·tol)."""
    s = (CERT_SD * tol) ** 2
    return int(np.ceil((4 * chi2 + np.sqrt(16 * chi2**2 + 8 * s * n_cells)) / (2 * s)))


def next_batch(st: SolverState, chi2: float, noise: float, alpha: float, n_cells: int,
               cfg: Settings) -> int:
    """Samples for the measurement at the new heights, from the error model of a step.

    A step of length α with a gradient carrying noise n leaves p = (1 − α)²χ² + α²n (exact
    Newton, linear regime; at least the last measured contraction times χ² where the problem
    is still non-linear; FIRST_CONTRACTION before any was measured). The next step then
    combines p with the next batch's noise n' into p·n'/(p + n'): the batch is the smallest
    with that ≤ max(TARGET_GAIN·p, ½ tol), and, once p ≤ tol, at least what certifies
    χ² ≤ tol (s.d. ≤ CERT_SD·tol). Never smaller than the last batch, at most BATCH_GROWTH
    times it — except when p ≤ CERT_SHARE·tol: then only the certifying batch (if it fails,
    its samples still count in the next step's average).
    """
    p = (1 - alpha) ** 2 * chi2 + alpha**2 * noise
    p = max(p, (st.contraction if np.isfinite(st.contraction) else FIRST_CONTRACTION) * chi2)
    if p <= CERT_SHARE * cfg.tol:  # expected to pass: measure just precisely enough
        return int(min(certify_batch(n_cells, cfg.tol, p), cfg.max_batch))
    target = max(TARGET_GAIN * p, 0.5 * cfg.tol)
    batch = st.batch
    if target < p:
        batch = max(batch, int(np.ceil(n_cells * (1 / target - 1 / p))))
    if p <= cfg.tol:
        batch = max(batch, certify_batch(n_cells, cfg.tol, p))
    return int(min(batch, BATCH_GROWTH * st.batch, cfg.max_batch))


def line_search(trial, h: np.ndarray, delta: np.ndarray, alpha: float, samples: int,
                floor: float, slack: float) -> tuple[float, int]:
    """Longest τ ∈ {α, α/2, …} with χ²(h − τΔ) ≤ (1 − τ/2)² χ²(h) on one reused set of samples
    (Kitagawa–Mérigot–Thibert's damped Newton test); `trial(h, n)` → raw χ² on those n samples,
    which carries the samples' own noise `floor` at every h (a step cannot remove it), so the test
    compares χ² − floor, up to `slack` (its s.d.). Returns (τ, trials); τ = 0 when no trial of
    LS_TRIALS passes."""
    base = max(trial(h, samples) - floor, 0.0)
    tau = alpha
    for k in range(1, LS_TRIALS + 1):
        if trial(h - tau * delta, samples) - floor <= (1 - tau / 2) ** 2 * base + slack:
            return tau, k
        tau /= 2
    return 0.0, LS_TRIALS


def step_newton(st: SolverState, stats: BatchStats, nu: np.ndarray, cfg: Settings,
                rescue=None, trial=None) -> tuple[dict, dict]:
    """Advance the stochastic Newton method by one measured batch; returns (mass errors, detail).

    Step length. The measured batch has noise n = Σ μ_i(1 − μ_i)/(ν_i B) in χ²; the Newton step
    of length α from it leaves ≈ (1 − α)²χ² + α²n, least at α = χ²/(χ² + n): far from the
    solution a full step, near the noise floor a weighted average of the new batch with what the
    iterate already knew (no sample is wasted on the way to tol). Far from the noise floor
    (χ² > LS_NOISE·n), and wherever the last step fell short of the model (contraction ≥
    LM_RELAX, or λ > 0), the non-linearity of the cell masses dominates, and `trial`
    line-searches α on replayed samples (`line_search`; on at most half the batch, with noise
    ≤ χ²/LS_NOISE where the batch allows, and never where that noise exceeds χ²); a search
    that fails raises the Levenberg–Marquardt damping λ (towards a Jacobi-scaled gradient
    step), a first-try success relaxes it.

    A step after which the fresh χ² grows beyond the two estimates' noise is undone and λ raised
    (with the batch doubled when it was noise-limited); one that cuts χ² below LM_RELAX of the
    last relaxes λ: damping shortens the low-frequency part of the step most, so kept on it
    would stall the solver. The next batch follows `next_batch`.

    Starved cells (μ̂_i < STARVED·ν_i) get a rescue step instead, `rescue(cells)` → height rises
    (see rescue_shifts), when they lack at least RESCUE_DEFICIT of the misplaced mass ½‖μ̂ − ν‖₁.
    A rescue step is never repeated in a row and never undone: the Newton step that follows is
    judged against the χ² measured after it. Fewer stragglers are rescued too once the Newton
    steps stall (contraction ≥ LM_RELAX): the Newton model has no curvature for them, and an
    empty cell left to it stays empty for many steps and spoils its neighbours' directions.
    """
    err = stats.mass_error(nu)
    n_cells = len(nu)
    chi2 = err["chi2"]
    noise = stats.noise(nu)
    sd = chi2_sd(n_cells, stats.batch, chi2)
    if stats.weights is not None:
        fresh = stats.weights
        st.w = fresh if st.w is None else HESSIAN_MEMORY * st.w + (1 - HESSIAN_MEMORY) * fresh
    info = {"noise": noise}
    if chi2 <= cfg.tol:
        st.converged = True
        return err, info | {"damping": st.damping, "rejected": False}
    if st.prev_h is not None:
        if chi2 > st.prev_chi2 + 2 * (sd + st.prev_sd):  # worse beyond the noise: undo
            st.h, st.prev_h = st.prev_h, None
            st.raise_damping()
            if st.prev_chi2 < LS_NOISE * noise:
                st.batch = min(2 * st.batch, cfg.max_batch)
            return err, info | {"damping": st.damping, "rejected": True}
        st.contraction = max(chi2, sd) / max(st.prev_chi2, st.prev_sd)
        if st.contraction < LM_RELAX:  # the damped model predicted well enough: trust it more
            st.relax_damping()
    starved = np.flatnonzero((stats.masses < STARVED * nu) & (nu > 0))
    rescued_last = bool(st.history) and st.history[-1]["detail"].get("rescued", 0) > 0
    deficit = float(np.sum(nu[starved] - stats.masses[starved]))  # mass the starved cells lack
    stalled = len(starved) > 0 and st.contraction >= LM_RELAX
    if rescue is not None and (deficit > RESCUE_DEFICIT * err["l1"] / 2 or stalled) and not rescued_last:
        st.h = st.h.copy()
        st.h[starved] += rescue(starved)
        st.h -= st.h.mean()
        st.prev_h, st.prev_chi2, st.contraction = None, np.inf, np.nan
        return err, info | {"damping": st.damping, "rejected": False, "rescued": int(len(starved))}
    grad = stats.masses - nu
    delta = sampled_newton_direction(st.w, stats.weight_counts, grad, nu, cfg.direct, st.damping)
    signal = max(chi2, sd)
    alpha = min(cfg.lr, signal / (signal + noise))
    samples = int(min(max(LS_MIN_SAMPLES, np.ceil(LS_NOISE * n_cells / signal)), stats.batch // 2))
    far = signal > LS_NOISE * noise and samples >= LS_MIN_SAMPLES
    struggling = st.contraction >= LM_RELAX or st.damping > 0  # the model predicts badly here
    samples = max(samples, min(LS_MIN_SAMPLES, stats.batch))
    floor = noise * (stats.batch - 1) / max(samples - 1, 1)  # the replayed samples' own noise
    if trial is not None and (far or struggling) and floor < signal:
        slack = 2 * chi2_sd(n_cells, samples, 0.0)
        tau, tries = line_search(trial, st.h, delta, alpha, samples, floor, slack)
        info["trials"] = tries
        if tau == 0.0:
            st.raise_damping()
        elif tries == 1:
            st.relax_damping()
        alpha = tau if tau > 0 else alpha / 2**LS_TRIALS
    st.prev_h, st.prev_chi2, st.prev_sd = st.h, chi2, sd
    st.h = st.h - alpha * delta
    st.h = st.h - st.h.mean()
    st.alpha = alpha
    st.batch = next_batch(st, chi2, noise, alpha, n_cells, cfg)
    return err, info | {"damping": st.damping, "rejected": False}


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
    replay = type(stream)(stream.measure, stream.seed)  # re-draws a batch (line search, bridges)
    while st.step < cfg.max_iter and not st.converged:
        stats = measure(assigner, stream, st.h, nu, st.batch, cfg.chunk, hessian=newton,
                        replay=replay)
        batch_used = st.batch
        if newton:
            def rescue(cells, batch=batch_used):  # enough samples to see each cell's share
                need = np.ceil(RESCUE_HITS / (RESCUE_SHARE * nu[cells].min()))
                return rescue_shifts(assigner, stream, nu, cells, int(min(batch, max(RESCUE_DRAW, need))))

            def trial(h, n, state=stats.drawn_from):
                return replay_chi2(assigner, replay, state, h, nu, n, cfg.chunk)
            err, detail = step_newton(st, stats, nu, cfg, rescue, trial)
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
