"""Public facade: the data manifold's tools under their historical names (intrinsic dimension,
topology, meshes from `brenier.analysis`; the autoencoder from `brenier.generators`). Nothing
inside brenier imports this module."""

from ..analysis.dimension import DimensionEstimate, intrinsic_dimension
from ..analysis.mesh import MeshTopology, angle_defects, mesh_topology
from ..analysis.topology import Component, Topology, plot_diagrams, topology
from ..generators.autoencoder import Autoencoder

__all__ = ["Autoencoder", "Component", "DimensionEstimate", "MeshTopology", "Topology", "angle_defects",
           "intrinsic_dimension", "mesh_topology", "plot_diagrams", "topology"]
