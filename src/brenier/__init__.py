"""brenier: geometric optimal-transport generative modelling (Gu's view of generative models)."""

from . import manifold, measures
from .generators.aeot import AEOT
from .measures import (
    DiscreteMeasure,
    Empirical,
    Gaussian,
    GridDensity,
    UniformBall,
    UniformCube,
    UniformPolytope,
)
from .morph import transport_images
from .ot import SemiDiscreteOT, solve
from .validation import BrenierError

__version__ = "0.1.0"

__all__ = [
    "AEOT",
    "BrenierError",
    "DiscreteMeasure",
    "Empirical",
    "Gaussian",
    "SemiDiscreteOT",
    "GridDensity",
    "UniformBall",
    "UniformCube",
    "UniformPolytope",
    "transport_images",
    "manifold",
    "measures",
    "solve",
    "__version__",
]
