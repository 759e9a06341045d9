"""The data manifold: intrinsic dimension, topology (Betti numbers, branches), meshes."""

from .autoencoder import Autoencoder
from .dimension import DimensionEstimate, intrinsic_dimension
from .mesh import MeshTopology, angle_defects, mesh_topology
from .topology import Component, Topology, plot_diagrams, topology

__all__ = ["Autoencoder", "Component", "DimensionEstimate", "MeshTopology", "Topology", "angle_defects",
           "intrinsic_dimension", "mesh_topology", "plot_diagrams", "topology"]
