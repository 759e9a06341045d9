"""Triangle meshes: Euler characteristic and the discrete Gauss–Bonnet theorem.

For a triangulated surface with V vertices, E edges and F faces, χ = V − E + F. The discrete
Gaussian curvature of a vertex is its angle defect: 2π − Σθ at an interior vertex, π − Σθ at a
boundary vertex (Σθ = the angles of the triangles meeting there; the boundary term is the
turning angle of the boundary curve). Gauss–Bonnet says the total defect equals 2πχ: summing the
local curvature gives a global, topological number, the discrete counterpart of a characteristic
class. The identity holds for every edge-manifold mesh, so a residual far from 0 flags a mesh that
is not a surface (edges shared by three or more faces, pinched boundaries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..validation import BrenierError, check_points, to_numpy


@dataclass(frozen=True)
class MeshTopology:
    """Counts, Euler characteristic and Gauss–Bonnet check of a triangle mesh.

    Attributes:
        n_vertices, n_edges, n_faces: V (vertices used by a face), E, F.
        euler_characteristic: χ = V − E + F.
        total_angle_defect: Σ_v defect(v) (interior 2π − Σθ, boundary π − Σθ).
        gauss_bonnet_residual: total_angle_defect − 2πχ (0 up to rounding on a surface).
        n_components: connected pieces; n_boundary_edges: edges on one face only.
        is_closed: no boundary edge; is_manifold: every edge on one or two faces.
        orientable: the faces can be given consistent windings (None for non-manifold meshes).
        genus: for a closed surface, g with χ = 2c − 2g (orientable) or χ = 2c − g (non-orientable),
            c = n_components; None for surfaces with boundary.
        angle_defects: (V_all,) defect per vertex of the input (0 for unused vertices).
    """

    n_vertices: int
    n_edges: int
    n_faces: int
    euler_characteristic: int
    total_angle_defect: float
    gauss_bonnet_residual: float
    n_components: int
    n_boundary_edges: int
    is_closed: bool
    is_manifold: bool
    orientable: bool | None
    genus: int | None
    angle_defects: np.ndarray

    def gauss_bonnet_holds(self, atol: float = 1e-6) -> bool:
        """Whether Σ defect = 2πχ within `atol` (relative to 2π per face)."""
        return abs(self.gauss_bonnet_residual) <= atol * 2 * math.pi * max(1, self.n_faces)

    def to_dict(self) -> dict[str, Any]:
        return {"n_vertices": self.n_vertices, "n_edges": self.n_edges, "n_faces": self.n_faces,
                "euler_characteristic": self.euler_characteristic,
                "total_angle_defect": self.total_angle_defect,
                "two_pi_chi": 2 * math.pi * self.euler_characteristic,
                "gauss_bonnet_residual": self.gauss_bonnet_residual,
                "n_components": self.n_components, "n_boundary_edges": self.n_boundary_edges,
                "is_closed": self.is_closed, "is_manifold": self.is_manifold,
                "orientable": self.orientable, "genus": self.genus}


def mesh_topology(mesh: Any, faces: Any = None) -> MeshTopology:
    """Euler characteristic and Gauss–Bonnet check of a triangle mesh.

    Args:
        mesh: a ``trimesh.Trimesh``, or vertices (V, 3) (or (V, 2) for a planar mesh) with `faces`.
        faces: (F, 3) vertex indices of the triangles when `mesh` is a vertex array.

    Vertices are used as given (no merging): a mesh whose triangles do not share vertex indices
    is a set of separate triangles, as its connectivity says.
    """
    v, f = _arrays(mesh, faces)
    edges, edge_of_face = _edges(f)
    counts = np.bincount(edge_of_face.ravel(), minlength=len(edges))
    boundary = edges[counts == 1]
    defects = angle_defects(v, f, boundary_vertices=np.unique(boundary))
    used = np.unique(f)
    chi = len(used) - len(edges) + len(f)
    is_manifold = bool(np.all(counts <= 2))
    n_comp = _n_components(len(v), edges, used)
    orientable = _orientable(f, edges, edge_of_face, counts) if is_manifold else None
    genus = None
    if is_manifold and len(boundary) == 0 and orientable is not None:
        genus = (2 * n_comp - chi) // 2 if orientable else 2 * n_comp - chi
    total = float(defects.sum())
    return MeshTopology(
        n_vertices=len(used), n_edges=len(edges), n_faces=len(f), euler_characteristic=int(chi),
        total_angle_defect=total, gauss_bonnet_residual=total - 2 * math.pi * chi,
        n_components=n_comp, n_boundary_edges=len(boundary), is_closed=len(boundary) == 0,
        is_manifold=is_manifold, orientable=orientable, genus=genus, angle_defects=defects)


def angle_defects(vertices: Any, faces: Any, boundary_vertices: Any = None) -> np.ndarray:
    """Discrete Gaussian curvature per vertex: 2π − Σθ inside, π − Σθ on `boundary_vertices`.

    Without `boundary_vertices` the boundary is found from the faces (edges on one face only).
    Vertices used by no face get 0.
    """
    import trimesh

    v, f = _arrays(vertices, faces)
    if boundary_vertices is None:
        edges, edge_of_face = _edges(f)
        counts = np.bincount(edge_of_face.ravel(), minlength=len(edges))
        boundary_vertices = np.unique(edges[counts == 1])
    theta = trimesh.triangles.angles(v[f])  # (F, 3) interior angles at f[:, 0], f[:, 1], f[:, 2]
    angle_sum = np.bincount(f.ravel(), weights=theta.ravel(), minlength=len(v))
    full = np.full(len(v), 2 * math.pi)
    full[np.asarray(boundary_vertices, dtype=np.int64)] = math.pi
    out = full - angle_sum
    out[np.setdiff1d(np.arange(len(v)), f.ravel())] = 0.0
    return out


def _arrays(mesh: Any, faces: Any) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3) float64, faces (F, 3) int64) from a trimesh or from arrays, validated."""
    if faces is None:
        if not (hasattr(mesh, "vertices") and hasattr(mesh, "faces")):
            raise BrenierError("mesh: expected a trimesh.Trimesh or vertices with faces=, "
                               f"got {type(mesh).__name__}")
        mesh, faces = mesh.vertices, mesh.faces
    v = check_points(mesh, "vertices")
    if v.shape[1] == 2:
        v = np.column_stack([v, np.zeros(len(v))])
    if v.shape[1] != 3:
        raise BrenierError(f"vertices: expected shape (V, 3) or (V, 2), got {v.shape}")
    f = to_numpy(faces, "faces")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise BrenierError(f"faces: expected a non-empty array of shape (F, 3), got {f.shape}")
    if not np.issubdtype(f.dtype, np.integer):
        if not (np.issubdtype(f.dtype, np.floating) and np.all(f == np.round(f))):
            raise BrenierError(f"faces: expected integer vertex indices, got dtype {f.dtype}")
    f = f.astype(np.int64)
    if f.min() < 0 or f.max() >= len(v):
        raise BrenierError(
            f"faces: indices must lie in [0, {len(v) - 1}], got [{f.min()}, {f.max()}]")
    bad = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
    if bad.any():
        raise BrenierError(f"faces: triangle {int(np.argmax(bad))} repeats a vertex index")
    return v, f


def _edges(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges (E, 2) and, per face, the index of its edges (F, 3).

    Edge j of face i joins f[i, j] and f[i, (j + 1) % 3].
    """
    directed = np.stack([f, np.roll(f, -1, axis=1)], axis=2).reshape(-1, 2)
    edges, inverse = np.unique(np.sort(directed, axis=1), axis=0, return_inverse=True)
    return edges, inverse.reshape(len(f), 3)


def _n_components(n: int, edges: np.ndarray, used: np.ndarray) -> int:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    labels = connected_components(graph, directed=False)[1]
    return len(np.unique(labels[used]))


def _orientable(f: np.ndarray, edges: np.ndarray, edge_of_face: np.ndarray,
                counts: np.ndarray) -> bool:
    """Can every face get a winding so that each interior edge is traversed once each way?

    Two faces sharing an edge must keep their relative winding when they traverse it in opposite
    directions, and flip it when in the same direction. On the double cover with nodes
    (face, winding) those rules are edges; the mesh is orientable iff no face is connected to its
    own flip.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n_f = len(f)
    forward = (f < np.roll(f, -1, axis=1)).ravel()  # direction of each face-edge w.r.t. (min, max)
    eid = edge_of_face.ravel()
    face = np.repeat(np.arange(n_f), 3)
    order = np.argsort(eid, kind="stable")
    eid_s, face_s, fwd_s = eid[order], face[order], forward[order]
    first = np.flatnonzero(np.r_[True, eid_s[1:] != eid_s[:-1]])
    pair = first[counts[eid_s[first]] == 2]
    a, b = face_s[pair], face_s[pair + 1]
    flip = (fwd_s[pair] == fwd_s[pair + 1]).astype(np.int64)  # same direction -> windings differ
    rows = np.concatenate([a, a + n_f])
    cols = np.concatenate([b + flip * n_f, b + (1 - flip) * n_f])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(2 * n_f, 2 * n_f))
    labels = connected_components(graph, directed=False)[1]
    return bool(np.all(labels[:n_f] != labels[n_f:]))
