"""Where μ lives: convex polytopes D ⊂ R^d (d ∈ {2, 3}) and domains (D with a uniform or a
pixel/voxel density ρ)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial import ConvexHull, QhullError

from ...validation import BrenierError


@dataclass
class Polytope:
    """A convex polytope {x : A x ≤ b} (rows of A are unit outer normals) with its vertices.

    In 2-D `vertices` are in counter-clockwise order and edge k runs from vertex k to k+1 with
    normal A[k]; in 3-D `faces[k]` lists the vertices of the face with normal A[k] in order.
    """

    A: np.ndarray
    b: np.ndarray
    vertices: np.ndarray
    faces: list
    volume: float
    centroid: np.ndarray

    @property
    def dim(self) -> int:
        return self.vertices.shape[1]

    @classmethod
    def box(cls, low: ArrayLike, high: ArrayLike) -> Polytope:
        """The box [low, high] (d ∈ {2, 3})."""
        low, high = np.asarray(low, float), np.asarray(high, float)
        d = len(low)
        if d == 2:
            v = np.array([[low[0], low[1]], [high[0], low[1]], [high[0], high[1]], [low[0], high[1]]])
            return cls.from_vertices(v)
        corners = np.array(list(itertools.product(*zip(low, high, strict=True))))
        return cls.from_vertices(corners)

    @classmethod
    def from_vertices(cls, points: ArrayLike, name: str = "vertices") -> Polytope:
        """Convex hull of the given points (d ∈ {2, 3}, full-dimensional)."""
        pts = np.asarray(points, float)
        d = pts.shape[1]
        try:
            hull = ConvexHull(pts)
        except (QhullError, ValueError) as exc:
            raise BrenierError(f"{name}: the points do not span a {d}-D convex body ({exc})") from None
        if d == 2:
            v = pts[hull.vertices]  # counter-clockwise for 2-D hulls
            e = np.roll(v, -1, axis=0) - v
            n = np.c_[e[:, 1], -e[:, 0]]
            n /= np.linalg.norm(n, axis=1, keepdims=True)
            b = np.einsum("ij,ij->i", n, v)
            return cls(n, b, v, [], float(hull.volume), _polygon_centroid(v))
        eq = hull.equations
        key = np.round(eq / np.abs(eq).max() * 1e9).astype(np.int64)
        _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        A, b, faces = [], [], []
        for f in range(len(first)):
            normal = eq[first[f], :3]
            idx = np.unique(hull.simplices[inverse.ravel() == f])
            fv = pts[idx]
            c = fv.mean(axis=0)
            u = fv[0] - c if np.linalg.norm(fv[0] - c) > 0 else np.cross(normal, [1.0, 0, 0])
            u /= np.linalg.norm(u)
            w = np.cross(normal, u)
            ang = np.arctan2((fv - c) @ w, (fv - c) @ u)
            A.append(normal)
            b.append(-eq[first[f], 3])
            faces.append(idx[np.argsort(ang)])
        used = np.unique(np.concatenate(faces))
        remap = np.full(len(pts), -1)
        remap[used] = np.arange(len(used))
        faces = [remap[f] for f in faces]
        tets = ConvexHull(pts[used])  # centroid from a cone decomposition
        c0 = pts[used].mean(axis=0)
        vol, mom = 0.0, np.zeros(3)
        for s in tets.simplices:
            p = pts[used][s]
            v6 = abs(np.linalg.det(p - c0)) / 6
            vol += v6
            mom += v6 * (p.sum(axis=0) + c0) / 4
        return cls(np.array(A), np.array(b), pts[used], faces, float(hull.volume), mom / vol)

    def contains(self, x: np.ndarray, tol: float = 1e-12) -> np.ndarray:
        scale = 1.0 + np.abs(self.b).max()
        return np.all(x @ self.A.T <= self.b + tol * scale, axis=-1)


def _polygon_centroid(v: np.ndarray) -> np.ndarray:
    w = np.roll(v, -1, axis=0)
    cr = v[:, 0] * w[:, 1] - w[:, 0] * v[:, 1]
    a = cr.sum() / 2
    return np.array([((v[:, 0] + w[:, 0]) * cr).sum(), ((v[:, 1] + w[:, 1]) * cr).sum()]) / (6 * a)


@dataclass
class Domain:
    """Where μ lives: a convex polytope with μ uniform on it, or a box with a pixel/voxel density.

    `grid` (when given) holds the density ρ per grid cell (∫ ρ = 1), axis k along x_k, over the
    box `poly`.
    """

    poly: Polytope
    grid: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return self.poly.dim

    @property
    def low(self) -> np.ndarray:
        return self.poly.vertices.min(axis=0)

    @property
    def high(self) -> np.ndarray:
        return self.poly.vertices.max(axis=0)

    @property
    def cell(self) -> np.ndarray:
        return (self.high - self.low) / np.asarray(self.grid.shape)

    def mean(self) -> np.ndarray:
        """∫ x dμ: the centroid of D, or the ρ-weighted mean of the grid-cell centres."""
        if self.grid is None:
            return self.poly.centroid
        axes = [self.low[k] + self.cell[k] * (np.arange(s) + 0.5) for k, s in enumerate(self.grid.shape)]
        mesh = np.meshgrid(*axes, indexing="ij")
        w = self.grid * np.prod(self.cell)
        return np.array([(w * m).sum() for m in mesh])

    def density_at(self, x: np.ndarray) -> np.ndarray:
        """ρ(x) (0 outside D)."""
        inside = self.poly.contains(x)
        if self.grid is None:
            return np.where(inside, 1.0 / self.poly.volume, 0.0)
        idx = np.floor((x - self.low) / self.cell).astype(np.int64)
        idx = np.clip(idx, 0, np.asarray(self.grid.shape) - 1)
        return np.where(inside, self.grid[tuple(idx.T)], 0.0)


def score_floor(y: np.ndarray, h: np.ndarray, verts: np.ndarray) -> float:
    """A lower bound of u_h on D: max_i min_v ⟨v, y_i⟩ + h_i (affine functions peak at vertices)."""
    best = -np.inf
    for a in range(0, len(y), 1 << 16):
        s = verts @ y[a:a + (1 << 16)].T + h[a:a + (1 << 16)]
        best = max(best, float(s.min(axis=0).max()))
    return best
