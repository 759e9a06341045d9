"""The hot kernel: top-k of the scores s_i(x) = ⟨x, y_i⟩ + h_i over N targets, for a batch of x.

The argmax is the cell W_i(h) holding x. It is a matrix product plus a row reduction; memory is
bounded by chunking (O(chunk × target_chunk)), never an M × N matrix. Two back-ends:

* ``faiss``: an exact inner-product index (``IndexFlatIP``) on the lifted points (y_i, h_i),
  queried with (x, 1), so ⟨(x, 1), (y_i, h_i)⟩ = s_i(x);
* ``torch``: chunked ``addmm`` + ``topk`` with a running merge, on CPU or CUDA;
* ``kdtree`` (low dimension, d ≤ 8): argmax_i s_i(x) is the nearest neighbour of (x, 0) among
  the lifted points (y_i, z_i), z_i² = C − |y_i|² − 2h_i ≥ 0, because
  |x − y_i|² + z_i² = |x|² + C − 2 s_i(x); a k-d tree answers it in O(log N) per query.

Targets are centred (y_i − ȳ) and queries shifted by the source mean m before the product, which
changes every score of a row by the same amount and keeps float32 products accurate.
"""

from __future__ import annotations

import numpy as np
import torch

from ..validation import ROWS, BrenierError, check_choice

try:
    import faiss
except ImportError:  # pragma: no cover - faiss-cpu is a dependency, but stay usable without it
    faiss = None

BACKENDS = ("auto", "faiss", "torch", "kdtree")
KDTREE_MAX_DIM = 8


def resolve_backend(backend: str, device: str, dim: int | None = None) -> str:
    check_choice(backend, "backend", BACKENDS)
    if backend == "kdtree" or (backend == "auto" and dim is not None and dim <= KDTREE_MAX_DIM
                                and device == "cpu"):
        if device != "cpu":
            raise BrenierError(f"backend: 'kdtree' runs on the CPU only, got device={device!r}")
        return "kdtree"
    if backend == "faiss":
        if faiss is None:
            raise BrenierError("backend: 'faiss' requested but faiss-cpu is not installed")
        if device != "cpu":
            raise BrenierError(f"backend: 'faiss' runs on the CPU only, got device={device!r}")
        return "faiss"
    if backend == "auto":
        return "faiss" if (faiss is not None and device == "cpu") else "torch"
    return "torch"


class Assigner:
    """Top-k cells of a power diagram: y (N, d) targets, heights h set by `set_heights`.

    The kernel scores ⟨x − m, y_i − ȳ⟩ + ĥ_i with `centred_targets` y_i − ȳ (float32) and
    `kernel_heights` ĥ_i = h_i + ⟨m, y_i − ȳ⟩ − max_j(·) (float64), which differ from
    ⟨x, y_i⟩ + h_i by `row_offset(x)`, the same for every i.

    Args:
        targets: (N, d) target points y_i.
        x_shift: (d,) point m subtracted from queries (the source mean); None for 0.
        backend: 'auto', 'faiss' or 'torch'.
        device: torch device for the torch back-end ('cpu', 'cuda').
        block_bytes: memory budget of one score block for the torch back-end.
    """

    def __init__(self, targets: np.ndarray, x_shift: np.ndarray | None = None,
                 backend: str = "auto", device: str = "cpu", block_bytes: int = 32 << 20):
        self.n, self.dim = targets.shape
        self.backend = resolve_backend(backend, device, self.dim)
        self.device = torch.device(device)
        self.y_mean = targets.mean(axis=0)
        self.x_shift = np.zeros(self.dim) if x_shift is None else np.asarray(x_shift, np.float64)
        self.targets = targets  # float64, not copied: memory stays ≈ one float32 copy at large N
        self.centred_targets = np.empty((self.n, self.dim), np.float32)
        for a in range(0, self.n, ROWS):
            self.centred_targets[a:a + ROWS] = targets[a:a + ROWS] - self.y_mean
        self._yc64 = (targets - self.y_mean) if self.backend == "kdtree" else None
        self._offset = targets @ self.x_shift - self.y_mean @ self.x_shift  # ⟨m, y_i − ȳ⟩
        self.block_bytes = int(block_bytes)
        self._index = None
        if self.backend == "torch":
            self._y_t = torch.from_numpy(self.centred_targets).to(self.device)
        self.set_heights(np.zeros(self.n))

    def set_heights(self, h: np.ndarray) -> None:
        """Load heights h (N,) (float64, any constant offset)."""
        hh = np.asarray(h, np.float64) + self._offset
        hh = hh - hh.max()  # scores relative to the largest height: keeps float32 accurate
        self.kernel_heights = hh
        self._h_shift = float(np.max(np.asarray(h, np.float64) + self._offset))
        h32 = hh.astype(np.float32)
        if self.backend == "kdtree":
            from scipy.spatial import cKDTree

            lift = -np.sum(self._yc64**2, axis=1) - 2 * hh
            self._lift_c = -lift.min()
            z = np.sqrt(lift + self._lift_c)
            self._tree = cKDTree(np.hstack([self._yc64, z[:, None]]), balanced_tree=False)
        elif self.backend == "faiss":
            if self._index is None:
                self._index = faiss.IndexFlatIP(self.dim + 1)
            else:
                self._index.reset()
            for a in range(0, self.n, ROWS):  # in pieces: no second full copy of the lifted points
                lifted = np.hstack([self.centred_targets[a:a + ROWS], h32[a:a + ROWS, None]])
                self._index.add(np.ascontiguousarray(lifted))
        else:
            self._h_t = torch.from_numpy(h32).to(self.device)

    def queries(self, x: np.ndarray) -> np.ndarray:
        """Queries x − m as the kernel scores them (float32)."""
        return np.ascontiguousarray((x - self.x_shift).astype(np.float32, copy=False))

    def row_offset(self, x: np.ndarray) -> np.ndarray:
        """The per-row constant removed from the scores: ⟨x, ȳ⟩ + max_i(h_i + ⟨m, y_i − ȳ⟩)."""
        return x.astype(np.float64) @ self.y_mean + self._h_shift

    def top_k(self, x: np.ndarray, k: int, with_offset: bool = False):
        """Return (indices (M, k) int64, scores (M, k) float32) in decreasing score order.

        Scores are s_i(x) minus a per-row constant unless `with_offset` adds it back (float64).
        """
        if not 1 <= k <= self.n:
            raise BrenierError(f"k: expected 1 <= k <= {self.n} (number of targets), got {k}")
        if self.backend == "kdtree":
            q = x - self.x_shift
            dist, idx = self._tree.query(np.hstack([q, np.zeros((len(q), 1))]), k=k, workers=-1)
            dist, idx = dist.reshape(len(q), k), idx.reshape(len(q), k).astype(np.int64)
            scores = (np.sum(q**2, axis=1, keepdims=True) + self._lift_c - dist**2) / 2
            if with_offset:
                scores = scores + self.row_offset(x)[:, None]
            return idx, scores
        q = self.queries(x)
        if self.backend == "faiss":
            qq = np.empty((len(q), self.dim + 1), np.float32)
            qq[:, :-1] = q
            qq[:, -1] = 1.0
            scores, idx = self._index.search(qq, k)
            idx = idx.astype(np.int64, copy=False)
        else:
            idx, scores = self._torch_top_k(q, k)
        if with_offset:
            scores = scores.astype(np.float64) + self.row_offset(x)[:, None]
        return idx, scores

    def _torch_top_k(self, q: np.ndarray, k: int):
        m = len(q)
        rows = max(256, min(m, self.block_bytes // (4 * min(self.n, ROWS))))
        tchunk = max(k, min(self.n, self.block_bytes // (4 * rows)))
        out_i = np.empty((m, k), np.int64)
        out_s = np.empty((m, k), np.float32)
        with torch.no_grad():
            for a in range(0, m, rows):
                xq = torch.from_numpy(q[a:a + rows]).to(self.device)
                best_s = best_i = None
                for b in range(0, self.n, tchunk):
                    s = torch.addmm(self._h_t[b:b + tchunk], xq, self._y_t[b:b + tchunk].T)
                    kk = min(k, s.shape[1])
                    if kk == 1:
                        v, i = s.max(dim=1, keepdim=True)
                    else:
                        v, i = s.topk(kk, dim=1)
                    i = i + b
                    if best_s is None:
                        best_s, best_i = v, i
                    else:
                        cs = torch.cat([best_s, v], dim=1)
                        ci = torch.cat([best_i, i], dim=1)
                        best_s, pos = cs.topk(min(k, cs.shape[1]), dim=1)
                        best_i = ci.gather(1, pos)
                out_s[a:a + rows] = best_s.cpu().numpy()
                out_i[a:a + rows] = best_i.cpu().numpy()
        return out_i, out_s

    def assign(self, x: np.ndarray) -> np.ndarray:
        return self.top_k(x, 1)[0][:, 0]
