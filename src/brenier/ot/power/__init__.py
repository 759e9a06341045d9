"""Power (Laguerre) diagrams clipped to a convex domain D ⊂ R^d, d ∈ {2, 3}, and exact integrals
over their cells.

Cells: W_i(h) = {x ∈ D : ⟨x, y_i⟩ + h_i ≥ ⟨x, y_j⟩ + h_j for all j}. The regular triangulation dual
to the diagram is the lower convex hull of the lifted points (y_i, −h_i); its simplices give the
power vertices and its (d−1)-faces the facets F_ij = W_i ∩ W_j.

Integrals use the divergence theorem with a field F = Φ e_1, ∂Φ/∂x_1 = f, Φ = 0 on the plane
x_1 = a_1 (a_1 = min of x_1 over D):   ∫_{W_i} f = Σ_j n_ij,1 ∫_{F_ij} Φ + Σ_k n_k,1 ∫_{W_i ∩ ∂_k D} Φ,
with n_ij = (y_j − y_i)/|y_j − y_i| and ∂_k D the faces of D; the pieces of ∂D are the restricted
diagram one dimension lower. Facet measures are signed: on degenerate sites (co-circular /
co-spherical, e.g. a regular grid) the triangulation is regular only up to rounding and some power
edges run backwards; integrated with their sign the cell integrals stay exact to second order in
that violation. Negative facet masses count 0 in the Hessian.

Modules, bottom up: options (PowerOptions), domain
(Polytope, Domain, score_floor), kernels2d / flips3d / kernels3d (compiled kernels), triangulation
(regular_triangulation), integrate2d / integrate3d (cell integrals), diagram (PowerDiagram,
power_diagram).
"""

from .diagram import PowerDiagram, power_diagram
from .domain import Domain, Polytope, score_floor
from .integrate2d import integrate_polynomials_2d
from .options import PowerOptions
from .triangulation import Triangulation, regular_triangulation, spatial_order

__all__ = [
    "Domain",
    "Polytope",
    "PowerDiagram",
    "PowerOptions",
    "Triangulation",
    "integrate_polynomials_2d",
    "power_diagram",
    "regular_triangulation",
    "score_floor",
    "spatial_order",
]
