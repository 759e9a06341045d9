"""The tuning values of the power-diagram code in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PowerOptions:
    """How power diagrams are built and integrated; the defaults are the fast paths.

    dummy_factor: the 2^d dummy sites sit at the centre of the bounding box of y and D ± this
    factor × its half-widths. spatial_sort, qhull_options: the input order and options of qhull.
    insert_min: from this many sites a fresh triangulation is built by incremental insertion
    (qhull below, or when insertion declines). flips: repair the previous triangulation by
    compiled bistellar flips after a change of h (and allow insertion); False: qhull afresh
    (in 3-D the previous one is still kept when it stays regular). compiled: facets of a
    uniform ρ, clipping and 3-D power vertices through the compiled kernels; False: the
    vectorised numpy paths (the reference the tests compare with).
    """

    dummy_factor: float = 3.0
    spatial_sort: bool = True
    qhull_options: str = "Qt Q3 Q5"
    insert_min: int = 4000
    flips: bool = True
    compiled: bool = True


DEFAULT_OPTIONS = PowerOptions()  # the options of calls that pass none
