"""Piecewise-constant source measures: a density on a pixel/voxel grid (`GridDensity`, e.g. a
grayscale image) and the uniform measure on a convex polytope (`UniformPolytope`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import ConvexHull, Delaunay, QhullError

from ..validation import BrenierError, check_points, to_numpy
from .sources import SourceMeasure, register_source


def _check_values(values: Any, name: str) -> np.ndarray:
    arr = to_numpy(values, name)
    if arr.ndim == 0 or arr.size == 0:
        raise BrenierError(f"{name}: expected a non-empty grid of pixel values, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise BrenierError(f"{name}: expected real pixel values, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        at = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise BrenierError(f"{name}: pixel values must be finite, got {arr[at]!r} at index {at}")
    if (arr < 0).any():
        at = tuple(int(i) for i in np.argwhere(arr < 0)[0])
        raise BrenierError(f"{name}: pixel values must be >= 0, got {arr[at]!r} at index {at}")
    if not arr.sum() > 0:
        raise BrenierError(f"{name}: all pixel values are zero; a density needs positive total mass")
    return arr


def _check_extent(extent: Any, dim: int, name: str = "extent") -> np.ndarray:
    """(d, 2) array of [low, high] per axis from (x1_min, x1_max, x2_min, x2_max, ...)."""
    if extent is None:
        return np.tile([0.0, 1.0], (dim, 1))
    arr = np.asarray(to_numpy(extent, name), dtype=np.float64).reshape(-1)
    if arr.shape != (2 * dim,):
        raise BrenierError(
            f"{name}: expected {2 * dim} numbers (x1_min, x1_max, x2_min, ...), got {arr.size}")
    arr = arr.reshape(dim, 2)
    if not np.isfinite(arr).all() or not (arr[:, 1] > arr[:, 0]).all():
        raise BrenierError(f"{name}: each axis needs finite min < max, got {arr.ravel().tolist()}")
    return arr


def image_to_values(img: Any, name: str = "image") -> np.ndarray:
    """Grayscale pixel masses, axis 0 along x (left → right), axis 1 along y (bottom → top).

    Accepts (H, W) arrays or (H, W, 3|4) colour images (luminance; alpha multiplies)."""
    arr = to_numpy(img, name)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        a = arr.astype(np.float64)
        gray = a[..., :3] @ np.array([0.299, 0.587, 0.114])
        if arr.shape[2] == 4:
            gray = gray * a[..., 3] / max(float(a[..., 3].max()), 1e-300)
        arr = gray
    if arr.ndim != 2:
        raise BrenierError(f"{name}: expected a 2-D grayscale image (H, W) or (H, W, 3|4), "
                           f"got shape {arr.shape}")
    return _check_values(arr, name)[::-1].T.copy()


def values_to_image(values: np.ndarray) -> np.ndarray:
    """Inverse of `image_to_values`: (n_x, n_y) grid → (H, W) image, row 0 at the top."""
    return np.asarray(values).T[::-1].copy()


class GridDensity(SourceMeasure):
    """Piecewise-constant density on a regular grid: μ(cell c) ∝ values[c].

    Args:
        values: (n_1, …, n_d) non-negative masses; array axis k runs along coordinate x_k.
        extent: (x1_min, x1_max, x2_min, x2_max, …) of the grid (default: the unit cube).

    Use `GridDensity.from_image(img)` for a picture (rows top → bottom become y high → low).
    """

    kind = "grid"
    qmc = False

    def __init__(self, values: Any, extent: Any = None, *, name: str = "values"):
        self.values = _check_values(values, name)
        self.dim = self.values.ndim
        self.extent = _check_extent(extent, self.dim)
        self.shape = self.values.shape
        self.probabilities = self.values / self.values.sum()
        self._cdf = np.cumsum(self.probabilities.ravel())

    @classmethod
    def from_image(cls, img: Any, extent: Any = None, *, name: str = "image") -> GridDensity:
        """A grayscale image as a density; default extent [0, W/s] × [0, H/s], s = max(H, W)."""
        vals = image_to_values(img, name)
        if extent is None:
            s = max(vals.shape)
            extent = (0.0, vals.shape[0] / s, 0.0, vals.shape[1] / s)
        return cls(vals, extent, name=name)

    @property
    def low(self) -> np.ndarray:
        return self.extent[:, 0].copy()

    @property
    def high(self) -> np.ndarray:
        return self.extent[:, 1].copy()

    @property
    def cell(self) -> np.ndarray:
        """Side lengths of one grid cell, (d,)."""
        return (self.extent[:, 1] - self.extent[:, 0]) / np.asarray(self.shape)

    @property
    def density(self) -> np.ndarray:
        """ρ per grid cell (∫ ρ = 1), same shape as `values`."""
        return self.probabilities / float(np.prod(self.cell))

    def centers(self) -> np.ndarray:
        """Grid-cell centres, shape (n_1 ⋯ n_d, d), in `values.ravel()` order."""
        axes = [self.extent[k, 0] + self.cell[k] * (np.arange(s) + 0.5)
                for k, s in enumerate(self.shape)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, self.dim)

    def _draw(self, n, rng):
        flat = np.searchsorted(self._cdf, rng.random(n) * self._cdf[-1], side="right")
        flat = np.minimum(flat, self.probabilities.size - 1)
        idx = np.stack(np.unravel_index(flat, self.shape), axis=1)
        u = rng.random((n, self.dim))
        return (self.extent[:, 0] + (idx + u) * self.cell).astype(np.float32)

    def mean(self) -> np.ndarray:
        return self.probabilities.ravel() @ self.centers()

    def to_dict(self) -> dict:
        return {"kind": self.kind, "dim": self.dim, "shape": list(self.shape),
                "extent": self.extent.ravel().tolist()}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"source_grid": self.values}

    @classmethod
    def from_saved(cls, spec: dict, arrays: dict[str, np.ndarray]) -> GridDensity:
        if "source_grid" not in arrays:
            raise BrenierError("source: saved grid source has no pixel values")
        return cls(arrays["source_grid"], spec.get("extent"))

    def __repr__(self):
        return f"GridDensity(shape={self.shape}, extent={self.extent.ravel().tolist()})"


class UniformPolytope(SourceMeasure):
    """Uniform measure on the convex hull of `vertices` (n, d), full-dimensional."""

    kind = "polytope"
    qmc = False

    def __init__(self, vertices: Any, *, name: str = "vertices"):
        pts = check_points(vertices, name)
        d = pts.shape[1]
        if len(pts) < d + 1:
            raise BrenierError(f"{name}: need at least {d + 1} points in {d}-D, got {len(pts)}")
        try:
            hull = ConvexHull(pts) if d > 1 else None
        except QhullError as exc:
            raise BrenierError(f"{name}: the points do not span a {d}-D convex body ({exc})") from None
        self.vertices = pts[hull.vertices] if hull is not None else np.array([[pts.min()], [pts.max()]])
        self.dim = d
        tri = Delaunay(self.vertices) if d > 1 else None
        self._simplices = self.vertices[tri.simplices] if tri is not None else self.vertices[None]
        edges = self._simplices[:, 1:] - self._simplices[:, :1]
        vol = np.abs(np.linalg.det(edges)) if d > 1 else np.abs(edges[:, 0, 0])
        self._p = vol / vol.sum()
        self.volume = float(vol.sum() / np.prod(np.arange(1, d + 1)))

    def _draw(self, n, rng):
        k = rng.choice(len(self._p), size=n, p=self._p)
        w = rng.dirichlet(np.ones(self.dim + 1), size=n)
        return np.einsum("nk,nkd->nd", w, self._simplices[k]).astype(np.float32)

    def mean(self) -> np.ndarray:
        return self._p @ self._simplices.mean(axis=1)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "dim": self.dim, "n_vertices": int(len(self.vertices))}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"source_vertices": self.vertices}

    @classmethod
    def from_saved(cls, spec: dict, arrays: dict[str, np.ndarray]) -> UniformPolytope:
        if "source_vertices" not in arrays:
            raise BrenierError("source: saved polytope source has no vertices")
        return cls(arrays["source_vertices"])

    def __repr__(self):
        return f"UniformPolytope(<{len(self.vertices)} vertices in {self.dim}-D>)"


register_source(GridDensity)
register_source(UniformPolytope)
