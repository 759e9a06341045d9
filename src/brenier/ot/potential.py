"""The Brenier potential u_h(x) = max_i ⟨x, y_i⟩ + h_i of a solved problem and what it gives:
the cell W_i(h) of a point, the map T = ∇u_h, cell masses μ(W_i(h)) and W_p(μ, ν)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..validation import BrenierError, check_points, check_positive_float, check_positive_int, like
from .assign import Assigner
from .problem import TransportProblem
from .result import mass_error

DEFAULT_CHUNK = 1 << 16


def default_sample_size(n_targets: int) -> int:
    """Samples for a mass estimate: ≥ 2^20 and ~100 per cell, at most 2^24."""
    return int(min(max(1 << 20, 100 * n_targets), 1 << 24))


class BrenierPotential:
    """u_h for heights h (N,) on a `TransportProblem`; numpy or torch in, the same kind out.

    `exact` says whether cell masses come from the exact power diagram (d ∈ {2, 3} and a source
    the exact solver handles) unless a sample size is asked for.
    """

    def __init__(self, problem: TransportProblem, heights: np.ndarray, *, exact: bool = False,
                 backend: str = "auto", device: str = "cpu", chunk_size: int = DEFAULT_CHUNK):
        self.problem = problem
        self.heights = heights
        self.exact = exact
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")
        self.assigner = Assigner(problem.targets, problem.source.mean(), backend, device)

    def _points(self, x: Any, name: str = "x") -> np.ndarray:
        return check_points(x, name, dim=self.problem.dim, min_rows=0)

    def scan_top_k(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices (M, k), scores ⟨x, y_i⟩ + h_i (M, k)) of the k best cells, by chunks."""
        self.assigner.set_heights(self.heights)
        out_i = np.empty((len(x), k), np.int64)
        out_s = np.empty((len(x), k), np.float64)
        for a in range(0, len(x), self.chunk_size):
            i, s = self.assigner.top_k(x[a:a + self.chunk_size], k, with_offset=True)
            out_i[a:a + self.chunk_size], out_s[a:a + self.chunk_size] = i, s
        return out_i, out_s

    def assign(self, x: Any) -> Any:
        """Index (M,) of the cell W_i(h) ∋ x: argmax_i ⟨x, y_i⟩ + h_i."""
        return like(self.scan_top_k(self._points(x), 1)[0][:, 0], x)

    def top_k(self, x: Any, k: int) -> tuple[Any, Any]:
        """(indices (M, k), scores (M, k)) of the k best cells, in decreasing score order."""
        xs = self._points(x)
        k = check_positive_int(k, "k")
        if k > self.problem.n:
            raise BrenierError(f"k: expected at most {self.problem.n} (number of targets), got {k}")
        i, s = self.scan_top_k(xs, k)
        return like(i, x), like(s, x)

    def transport(self, x: Any) -> Any:
        """T(x) = ∇u_h(x) = y_{assign(x)}, shape (M, d)."""
        return like(self.problem.targets[self.scan_top_k(self._points(x), 1)[0][:, 0]], x)

    def value(self, x: Any) -> Any:
        """u_h(x) = max_i ⟨x, y_i⟩ + h_i, shape (M,)."""
        return like(self.scan_top_k(self._points(x), 1)[1][:, 0], x)

    def _sample_size(self, n_samples: int | None) -> int:
        return check_positive_int(n_samples, "n_samples", allow_none=True) or default_sample_size(
            self.problem.n)

    def cell_masses(self, n_samples: int | None = None, seed: int | None = None) -> np.ndarray:
        """μ(W_i(h)), shape (N,): exact when `exact` and no `n_samples`, else a Monte-Carlo
        estimate from `n_samples` fresh source samples."""
        if self.exact and n_samples is None:
            from .cells.exact import exact_cell_masses

            return exact_cell_masses(self.problem.source, self.problem.targets, self.heights)
        n = self._sample_size(n_samples)
        stream = self.problem.source.stream(seed)
        counts = np.zeros(self.problem.n, np.int64)
        self.assigner.set_heights(self.heights)
        done = 0
        while done < n:
            m = min(self.chunk_size, n - done)
            counts += np.bincount(self.assigner.assign(stream.draw(m)), minlength=len(counts))
            done += m
        return counts / n

    def mass_error(self, n_samples: int | None = None, seed: int | None = None) -> dict:
        """{'l1': Σ|μ(W_i) − ν_i|, 'max_rel': max |μ(W_i) − ν_i|/ν_i, 'chi2': Σ (·)²/ν_i (unbiased
        for sampled masses), 'min_mass', 'n_samples' (None for exact masses)}."""
        if self.exact and n_samples is None:
            return mass_error(self.cell_masses(), self.problem.weights) | {"n_samples": None}
        n = self._sample_size(n_samples)
        return mass_error(self.cell_masses(n, seed), self.problem.weights, n) | {"n_samples": n}

    def wasserstein(self, p: float = 2, n_samples: int | None = None, seed: int | None = None) -> float:
        """W_p(μ, ν) ≈ (mean |x − T(x)|^p)^(1/p) over `n_samples` source samples (default 2^18)."""
        p = check_positive_float(p, "p")
        n = check_positive_int(n_samples, "n_samples", allow_none=True) or (1 << 18)
        stream = self.problem.source.stream(seed)
        self.assigner.set_heights(self.heights)
        y = self.problem.targets
        total, done = 0.0, 0
        while done < n:
            m = min(self.chunk_size, n - done)
            x = stream.draw(m).astype(np.float64)
            total += float(np.sum(np.linalg.norm(x - y[self.assigner.assign(x)], axis=1) ** p))
            done += m
        return (total / n) ** (1 / p)
