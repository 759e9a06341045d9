"""The power diagram of (y, h) restricted to a domain: exact cell masses, moments and facets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .domain import Domain
from .integrate2d import cells_2d
from .integrate3d import cells_3d
from .options import DEFAULT_OPTIONS, PowerOptions
from .triangulation import Triangulation, regular_triangulation


@dataclass
class PowerDiagram:
    """Exact integrals over the cells W_i(h) ∩ D.

    masses (N,): μ(W_i); moments (N, d): ∫_{W_i} x dμ; pairs (P, 2) and facet_mass (P,):
    μ-measure of the facet F_ij (length/area weighted by ρ), so the Hessian of the energy is
    the Laplacian with weights facet_mass / |y_i − y_j|; segments (P, 2, 2) in 2-D: the clipped
    facets.
    """

    masses: np.ndarray
    moments: np.ndarray
    pairs: np.ndarray
    facet_mass: np.ndarray
    segments: np.ndarray | None = None
    triangulation: Triangulation | None = None

    def centroids(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.masses[:, None] > 0, self.moments / self.masses[:, None], np.nan)

    def hessian(self, y: np.ndarray) -> sp.csr_matrix:
        """∂μ(W_i)/∂h_j: the graph Laplacian L = diag(W 1) − W, W_ij = μ(F_ij)/|y_i − y_j|."""
        n = len(y)
        i, j = self.pairs.T
        w = self.facet_mass / np.linalg.norm(y[i] - y[j], axis=1)
        diag = np.bincount(i, w, minlength=n) + np.bincount(j, w, minlength=n)
        k = np.arange(n)
        return sp.csr_matrix((np.r_[-w, -w, diag], (np.r_[i, j, k], np.r_[j, i, k])), shape=(n, n))


def power_diagram(y: np.ndarray, h: np.ndarray, dom: Domain, *, segments: bool = False,
                  reuse: Triangulation | None = None, flips_only: bool = False,
                  options: PowerOptions | None = None) -> PowerDiagram | None:
    """Exact masses, moments and facet measures of the cells W_i(h) ∩ D (see brenier.ot.power).

    `reuse`: the triangulation of an earlier call with the same y, repaired by flips; with
    `flips_only`, None when flips cannot reach h (some cell would have to empty, or degenerate).
    `options`: tuning and the numpy reference paths (default: PowerOptions())."""
    options = options or DEFAULT_OPTIONS
    y = np.ascontiguousarray(y, dtype=np.float64)
    h = np.ascontiguousarray(h, dtype=np.float64)
    if len(y) == 1:
        return PowerDiagram(np.ones(1), dom.mean()[None, :].copy(), np.zeros((0, 2), np.int64),
                            np.zeros(0), np.zeros((0, 2, y.shape[1])) if segments else None, None)
    tri = regular_triangulation(y, h, dom.poly.vertices, reuse, flips_only, options)
    if tri is None:
        return None
    if dom.dim == 2:
        return PowerDiagram(*cells_2d(y, h, dom, tri, segments, options), tri)
    return PowerDiagram(*cells_3d(y, h, dom, tri, options), tri)
