"""The singular set of u_h: where T = ∇u_h jumps between branches of the support of ν.

`rules`: the scale-aware angle, gap, topology and spectral rules and `SingularSet`;
`branches`: branches of the targets from the spectrum of their neighbour graph.
"""

from .branches import spectral_branches
from .rules import (
    THRESHOLD_RULES,
    SingularSet,
    classify_pairs,
    dihedral_angles,
    scaled_angle,
    singular_set,
)

__all__ = ["THRESHOLD_RULES", "SingularSet", "classify_pairs", "dihedral_angles", "scaled_angle",
           "singular_set", "spectral_branches"]
