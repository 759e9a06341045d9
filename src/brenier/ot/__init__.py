"""Semi-discrete optimal transport: Brenier potentials, their cells and maps."""

from .semidiscrete import SemiDiscreteOT, solve

__all__ = ["SemiDiscreteOT", "solve"]
