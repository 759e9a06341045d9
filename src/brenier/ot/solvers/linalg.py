"""Newton systems of the Brenier energy: ∇²E(h) = L, the weighted graph Laplacian of the power
diagram with weights μ(F_ij)/|y_i − y_j| over the facets F_ij = W_i ∩ W_j; both solvers solve
L Δ = ∇E = μ(W(h)) − ν for the Newton direction Δ."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import LinearOperator, cg, splu, spsolve

MIN_PAIR_SAMPLES = 10  # facet samples a cell needs before its curvature estimate is trusted
AMG_MIN = 20000  # from this many cells the direct path is AMG-preconditioned CG (pyamg)
AMG_RTOL, AMG_REBUILD = 1e-2, 25  # its residual cap; iterations beyond which AMG is rebuilt
# one forward Gauss–Seidel sweep before and one backward sweep after the coarse correction: a
# symmetric V-cycle (as CG needs) at half the cost of pyamg's default symmetric sweeps both ways
AMG_OPTIONS: dict = {"presmoother": ("gauss_seidel", {"sweep": "forward"}),
                     "postsmoother": ("gauss_seidel", {"sweep": "backward"})}


def sampled_newton_direction(w: sp.csr_matrix, counts: np.ndarray, grad: np.ndarray, nu: np.ndarray,
                     direct: bool, damping: float = 0.0) -> np.ndarray:
    """Solve (L + R + λ D) Δ = ∇E, L = diag(w 1) − w the estimated Hessian, R a diagonal guard,
    D = diag(L + R) and λ ≥ 0 the Levenberg–Marquardt damping (λ → ∞: Jacobi-scaled gradient).

    A cell seen by fewer than MIN_PAIR_SAMPLES facet samples (empty, hidden or barely sampled)
    or outside the largest connected component of the sampled facet graph (whose facets to the
    rest were missed: L leaves such a group's common height free, and Δ would shift it without
    bound) has an unreliable curvature estimate; its diagonal is raised to the typical c·ν_i,
    and the largest component solves for its own error less its ν-share of the mass the others
    lack (its common height is the gauge, so that share would otherwise move it without bound);
    c = median(L_ii/ν_i) over the reliable cells, so it moves by bounded steps. Reliable cells
    keep their estimate (plus 1e-6·c·ν_i, which fixes the constant null vector of L).
    """
    deg = np.asarray(w.sum(axis=1)).ravel()
    reliable = (counts >= MIN_PAIR_SAMPLES) & (deg > 0) & (nu > 0)
    largest = in_largest_component(w)
    reliable &= largest
    rhs = np.asarray(grad, np.float64)
    if not largest.all():  # the main component cannot fix the mass the others lack: only its share
        rhs = rhs.copy()
        rhs[largest] -= nu[largest] * (rhs[largest].sum() / max(nu[largest].sum(), 1e-300))
    c = float(np.median(deg[reliable] / nu[reliable])) if reliable.any() else 1.0
    typical = c * np.maximum(nu, nu[nu > 0].min())
    guard = np.where(reliable, 0.0, np.maximum(typical - deg, 0.0)) + 1e-6 * typical
    A = (sp.diags((1.0 + damping) * (deg + guard)) - w).tocsc()
    if direct:  # planar-like graphs (d ≤ 3): sparse LU has little fill, CG would need ~√N steps
        return spsolve(A, rhs)
    precond = sp.diags(1.0 / ((1.0 + damping) * (deg + guard)))
    delta, _ = cg(A, rhs, rtol=1e-8, maxiter=1000, M=precond)
    return delta


def in_largest_component(w: sp.csr_matrix) -> np.ndarray:
    """(N,) bool: the vertices of the largest connected component of the graph with weights w."""
    if w.shape[0] < 2:
        return np.ones(w.shape[0], bool)
    _, label = connected_components(w, directed=False)
    return label == np.argmax(np.bincount(label))


def _pyamg():
    try:
        import pyamg
    except ImportError:  # pragma: no cover
        return None
    return pyamg


class ExactNewtonSystem:
    """Solves (L + σ diag ν) Δ = g; σ tiny fixes the constant null vector (and any disconnected
    components of the facet graph, e.g. across zero-density gaps).

    Direct: a sparse LU with a symmetric ordering (planar-like graphs), reused as the
    preconditioner of CG for the next Hessians and refactored when CG stalls; from `amg_min` cells
    on, CG preconditioned by a smoothed-aggregation AMG hierarchy (pyamg) instead, rebuilt when
    CG needs more than AMG_REBUILD iterations. Otherwise Jacobi-preconditioned CG."""

    def __init__(self, direct: bool, amg_min: int = AMG_MIN):
        self.direct = direct
        self.amg_min = amg_min
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
        if self.direct and len(nu) >= self.amg_min and _pyamg() is not None:
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
