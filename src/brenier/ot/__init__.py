"""Semi-discrete optimal transport: Brenier potentials, their cells and maps.

Notation (every module of `brenier.ot` uses these symbols with one meaning each):

    μ        the source measure (density ρ on a domain D), sampled as x ~ μ
    ν        the target measure Σ_i ν_i δ_{y_i}: weights ν_i ≥ 0 summing to 1, points y_i ∈ R^d
    N, d     number of targets, dimension
    h        Brenier heights, h ∈ R^N (mean 0)
    u_h      the Brenier potential u_h(x) = max_i ⟨x, y_i⟩ + h_i (convex, piecewise linear)
    W_i(h)   the cell {x : i = argmax_j ⟨x, y_j⟩ + h_j} (power diagram); F_ij = W_i ∩ W_j a facet
    E(h)     the energy ∫ u_h dμ − Σ_i h_i ν_i; ∇E = μ(W_i(h)) − ν_i, ∇²E the facet Laplacian
    T        the transport map T = ∇u_h: x ↦ y_i on W_i(h)
    θ_ij     the dihedral angle between the facets (y_i, −1), (y_j, −1) of the graph of u_h;
             θ̂_ij its scale-aware version, θ* the singular threshold
    χ²       the cell-mass error Σ_i (μ(W_i) − ν_i)²/ν_i; max_rel = max_i |μ(W_i) − ν_i|/ν_i
    Δ        a Newton direction, solving ∇²E Δ = ∇E; α, τ its step lengths in the Monte-Carlo and
             the exact Newton solver
    w_ij     Hessian weights μ(F_ij)/|y_i − y_j| (∇²E = diag(w 1) − w)
    δ        half-width of the strips around facets whose samples estimate μ(F_ij)

Layout: `problem` (μ, y, ν) → `solvers` (monte_carlo, exact, linalg, start, checkpoint) →
`result` (SolveResult, one record) → `potential` (u_h, T, cell masses) → `cells` (sampled and
exact cell statistics) → `singular` → `extension`; `estimator.SemiDiscreteOT` ties them together.
"""

from .estimator import SemiDiscreteOT, solve
from .result import RECORD_KEYS, SolveResult

__all__ = ["RECORD_KEYS", "SemiDiscreteOT", "SolveResult", "solve"]
