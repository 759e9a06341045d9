"""Monge–Ampère transport between two grayscale images and McCann's displacement interpolation.

Image A is the density μ (piecewise constant on its pixels); image B (or a point cloud) is the
discrete target ν = Σ ν_i δ_{y_i} at its pixel centres. The exact semi-discrete solver gives the
Brenier heights h, the map T(x) = y_i on W_i(h), and the interpolation μ_t = ((1 − t) id + t T)#μ,
t ∈ [0, 1], which moves each cell W_i straight onto y_i.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .io import atomic_path
from .measures import GridDensity, image_to_values, values_to_image
from .ot.assign import Assigner
from .ot.cells.exact import exact_centroids
from .ot.solvers.exact import solve_exact
from .validation import BrenierError, check_points, check_positive_int, check_weights, like


@dataclass
class ImageTransport:
    """The optimal map from image A (density μ) to the targets (y_i, ν_i), and its frames.

    Attributes: source (GridDensity of A), targets (N, 2), weights (N,), heights (N,), n_iter,
    converged, history, times (F,), frames (F, H, W) float images (row 0 at the top, each frame
    sums to 1).
    """

    source: GridDensity
    targets: np.ndarray
    weights: np.ndarray
    heights: np.ndarray
    n_iter: int
    converged: bool
    history: list
    shape: tuple[int, int]
    supersample: int = 2
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    frames: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    _assigner: Assigner | None = field(default=None, init=False, repr=False, compare=False)

    def _inside(self, x: np.ndarray, name: str) -> None:
        lo, hi = self.source.low, self.source.high
        out = np.any((x < lo - 1e-12) | (x > hi + 1e-12), axis=1)
        if out.any():
            r = int(np.argmax(out))
            raise BrenierError(
                f"{name}: points outside the domain [{lo[0]:g}, {hi[0]:g}] × [{lo[1]:g}, {hi[1]:g}] "
                f"of img_a (first at row {r}: {x[r].tolist()})")

    def assign(self, x: Any) -> Any:
        """Index i of the cell W_i(h) ∋ x (argmax_i ⟨x, y_i⟩ + h_i), shape (M,)."""
        xs = check_points(x, "x", dim=2, min_rows=0)
        self._inside(xs, "x")
        return like(self._assign(xs), x)

    def _assign(self, xs: np.ndarray) -> np.ndarray:
        if self._assigner is None:  # the lifted k-d tree of the power diagram (y, h)
            self._assigner = Assigner(self.targets, backend="kdtree")
            self._assigner.set_heights(self.heights)
        return self._assigner.assign(xs)

    def transport(self, x: Any) -> Any:
        """T(x) = ∇u_h(x) = y_{i(x)}, shape (M, 2)."""
        xs = check_points(x, "x", dim=2, min_rows=0)
        self._inside(xs, "x")
        return like(self.targets[self._assign(xs)], x)

    def _quadrature(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Sub-pixel points x_q of μ (s × s per pixel with mass), their masses at t = 0 and at
        t = 1 (summing to ν_i over each cell), and their targets T(x_q)."""
        if not hasattr(self, "_quad"):
            s = self.supersample
            src = self.source
            nz = np.flatnonzero(src.probabilities.ravel() > 0)
            idx = np.stack(np.unravel_index(nz, src.shape), axis=1)
            off = (np.stack(np.meshgrid(np.arange(s), np.arange(s), indexing="ij"), -1)
                   .reshape(-1, 2) + 0.5) / s
            x = src.low + (idx[:, None, :] + off[None]) * src.cell
            m = np.repeat(src.probabilities.ravel()[nz] / s**2, s * s)
            x = x.reshape(-1, 2)
            i = self._assign(x)
            # sub-pixel sums only approximate the exact cell masses ν_i: the factor `fix` makes
            # each cell carry exactly ν_i at t = 1 (blended in with t, so t = 0 shows A as is);
            # a cell too small to hold a sub-pixel moves as a point from its exact centroid
            got = np.bincount(i, m, minlength=len(self.targets))
            empty = np.flatnonzero((got <= 0) & (self.weights > 0))
            fix = self.weights[i] / np.where(got > 0, got, 1.0)[i]
            if len(empty):
                c = exact_centroids(self.source, self.targets, self.heights)[empty]
                x, i = np.r_[x, c], np.r_[i, empty]
                m, fix = np.r_[m, np.zeros(len(empty))], np.r_[fix, np.zeros(len(empty))]
                m_end = m * fix
                m_end[-len(empty):] = self.weights[empty]
            else:
                m_end = m * fix
            self._quad = (x, m, m_end, self.targets[i])
        return self._quad

    def interpolate(self, t: float) -> np.ndarray:
        """μ_t = ((1 − t) id + t T)#μ rendered on the output grid (bilinear splats), (H, W)."""
        t = float(t)
        if not 0.0 <= t <= 1.0:
            raise BrenierError(f"t: expected a time in [0, 1], got {t!r}")
        x, m0, m1, y = self._quadrature()
        p = (1 - t) * x + t * y
        m = (1 - t) * m0 + t * m1
        H, W = self.shape
        nx, ny = W, H
        lo = self.source.low
        cell = (self.source.high - lo) / np.array([nx, ny])
        g = (p - lo) / cell - 0.5  # grid coordinates of pixel centres
        g0 = np.floor(g).astype(np.int64)
        f = g - g0
        out = np.zeros(nx * ny)
        for dx in (0, 1):
            for dy in (0, 1):
                ix = np.clip(g0[:, 0] + dx, 0, nx - 1)
                iy = np.clip(g0[:, 1] + dy, 0, ny - 1)
                wgt = (f[:, 0] if dx else 1 - f[:, 0]) * (f[:, 1] if dy else 1 - f[:, 1])
                out += np.bincount(ix * ny + iy, m * wgt, minlength=nx * ny)
        return values_to_image(out.reshape(nx, ny))

    def render(self, frames: int) -> np.ndarray:
        """`frames` images of μ_t at t = 0, 1/(frames−1), …, 1; stored in .times/.frames."""
        frames = check_positive_int(frames, "frames")
        if frames < 2:
            raise BrenierError(f"frames: expected at least 2 frames, got {frames}")
        self.times = np.linspace(0.0, 1.0, frames)
        self.frames = np.stack([self.interpolate(t) for t in self.times])
        return self.frames

    def save_gif(self, path: str | os.PathLike, fps: float = 8.0, boomerang: bool = True) -> None:
        """Write the frames as an animated GIF (each frame scaled to its maximum), atomically."""
        import imageio.v3 as iio

        if len(self.frames) == 0:
            raise BrenierError("frames: nothing rendered yet; call render(frames) first")
        seq = list(self.frames) + (list(self.frames[-2:0:-1]) if boomerang else [])
        imgs = [np.round(255 * f / max(float(f.max()), 1e-300)).astype(np.uint8) for f in seq]
        with atomic_path(path, suffix=".gif") as tmp:
            iio.imwrite(tmp, np.stack(imgs), extension=".gif", duration=1000.0 / fps, loop=0)


def _image_targets(img_b: Any, extent: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres of B (within A's extent) with their masses; blocks of f × f pixels are merged
    (mass-weighted centroids) until at most `max_points` carry mass."""
    vals = image_to_values(img_b, "img_b")
    f = 1
    while True:
        nx, ny = -(-vals.shape[0] // f), -(-vals.shape[1] // f)
        pad = np.zeros((nx * f, ny * f))
        pad[:vals.shape[0], :vals.shape[1]] = vals
        cx = extent[0, 0] + (np.arange(nx * f) + 0.5) * (extent[0, 1] - extent[0, 0]) / vals.shape[0]
        cy = extent[1, 0] + (np.arange(ny * f) + 0.5) * (extent[1, 1] - extent[1, 0]) / vals.shape[1]
        blocks = pad.reshape(nx, f, ny, f)
        mass = blocks.sum(axis=(1, 3))
        if np.count_nonzero(mass) <= max_points or f >= max(vals.shape):
            break
        f += 1
    mx = (blocks * cx.reshape(nx, f)[:, :, None, None]).sum(axis=(1, 3))
    my = (blocks * cy.reshape(ny, f)[None, None, :, :]).sum(axis=(1, 3))
    keep = mass > 0
    y = np.c_[mx[keep] / mass[keep], my[keep] / mass[keep]]
    return y, mass[keep] / mass[keep].sum()


def transport_images(img_a: Any, img_b: Any = None, *, targets: Any = None,
                     target_weights: Any = None, frames: int = 16, max_points: int = 20000,
                     extent: Any = None, supersample: int = 2, tol: float = 1e-9,
                     max_iter: int = 200, callback: Callable[[dict], None] | None = None,
                     verbose: bool = False) -> ImageTransport:
    """Optimal transport from grayscale image A to image B (or to a point cloud) and its frames.

    Args:
        img_a: (H, W) or (H, W, 3|4) image: the source density μ (pixel masses ≥ 0, not all 0).
        img_b: the target image: a Dirac at each pixel centre with mass (merged into blocks when
            more than `max_points` pixels carry mass). Or pass `targets` (N, 2) points inside the
            domain with `target_weights` instead.
        frames: number of displacement-interpolation frames (t from 0 to 1) to render.
        extent: (x_min, x_max, y_min, y_max) of both images (default [0, W/s] × [0, H/s],
            s = max(H, W) of A).
        supersample: sub-pixels per pixel side used to push μ forward when rendering.
        tol, max_iter, callback, verbose: passed to the exact Newton solver.

    Returns an ImageTransport with heights, map (`transport`, `assign`) and `frames` (F, H, W).
    """
    src = GridDensity.from_image(img_a, extent, name="img_a")
    max_points = check_positive_int(max_points, "max_points")
    supersample = check_positive_int(supersample, "supersample")
    if (img_b is None) == (targets is None):
        raise BrenierError("img_b: pass exactly one of img_b (an image) or targets (points)")
    if img_b is not None:
        y, nu = _image_targets(img_b, src.extent, max_points)
    else:
        y = check_points(targets, "targets", dim=2)
        nu = check_weights(target_weights, len(y), "target_weights")
        lo, hi = src.low, src.high
        out = np.any((y < lo) | (y > hi), axis=1)
        if out.any():
            r = int(np.argmax(out))
            raise BrenierError(
                f"targets: points outside the domain [{lo[0]:g}, {hi[0]:g}] × [{lo[1]:g}, {hi[1]:g}] "
                f"of img_a (first at row {r}: {y[r].tolist()})")
    solved = solve_exact(src, y, nu, tol=tol, max_iter=max_iter, callback=callback, verbose=verbose)
    H, W = values_to_image(src.values).shape
    result = ImageTransport(src, y, nu, solved.heights, solved.n_iter, solved.converged, solved.history,
                            (H, W), supersample)
    result.render(frames)
    return result
