"""SemiDiscreteOT: the Brenier potential u_h(x) = max_i ⟨x, y_i⟩ + h_i between a continuous source μ
and a discrete target ν = Σ ν_i δ_{y_i}; its gradient T = ∇u_h is the optimal transport map."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import io
from ..measures import DiscreteMeasure, SourceMeasure, make_source, source_from_dict
from ..validation import (
    BrenierError,
    check_choice,
    check_points,
    check_positive_float,
    check_positive_int,
    like,
)
from . import solver as _solver
from .assign import Assigner, resolve_backend

FORMAT = "brenier.SemiDiscreteOT"
CHECKPOINT_FORMAT = "brenier.SemiDiscreteOT.checkpoint"
FORMAT_VERSION = 1
DEFAULT_CHUNK = 1 << 16
EXACT_TOL = 1e-9  # max relative cell-mass error of the exact power-diagram solver


def default_sample_size(n_targets: int) -> int:
    """Samples for a mass estimate: ≥ 2^20 and ~100 per cell, at most 2^24."""
    return int(min(max(1 << 20, 100 * n_targets), 1 << 24))


class SemiDiscreteOT:
    """Semi-discrete optimal transport from a source measure μ to Diracs ν by Brenier heights h.

    Args:
        source: a `brenier.measures` source (UniformCube, UniformBall, Gaussian, Empirical) or a
            name ('uniform', 'ball', 'gaussian'); names take their dimension from the targets.
        tol: stop when the unbiased χ² mass error Σ (μ(W_i) − ν_i)²/ν_i, measured on samples drawn
            after h was fixed, is ≤ tol (2.5e-3 ≈ 5 % RMS relative cell-mass error).
        max_iter: maximum number of optimisation steps.
        lr: step size: the Newton damping bound α ≤ lr (default 1.0), or Adam's learning rate in
            height units (default: 1 % of the score spread).
        batch_size: source samples in the first step (default 64 N, at least 65536); doubled when
            progress stalls, up to `max_batch`.
        seed: seed of every random stream (training, evaluation).
        device: 'cpu' or a torch device such as 'cuda'.
        backend: 'auto' (faiss on CPU when installed, else torch), 'faiss' or 'torch'.
        checkpoint: path of a checkpoint file; saved every `checkpoint_every` steps and resumed from
            when present with the same problem and settings.
        optimizer: Monte-Carlo optimiser: 'newton' (stochastic damped Newton, default) or 'adam'.
        method: 'auto' (the exact power-diagram Newton solver where it applies — d ∈ {2, 3} and a
            box, polygon, 2-D disc or pixel-density source — else Monte Carlo), 'newton' (exact;
            an error where it does not apply) or 'monte-carlo'.

    Attributes (after `fit`): heights_ (N,), n_iter_, converged_, history_ (list of dicts with
    step, batch, energy, grad_norm, l1, max_rel, chi2, alpha, seconds), targets_ (N, d),
    weights_ (N,).
    """

    def __init__(self, source: Any = "uniform", *, tol: float = 2.5e-3, max_iter: int = 100,
                 lr: float | None = None, batch_size: int | None = None, seed: int | None = 0,
                 device: str = "cpu", backend: str = "auto", checkpoint: str | os.PathLike | None = None,
                 optimizer: str = "newton", max_batch: int = 1 << 24, checkpoint_every: int = 1,
                 chunk_size: int = DEFAULT_CHUNK, method: str = "auto"):
        self.source = source
        self.tol = tol
        self.max_iter = max_iter
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.backend = backend
        self.checkpoint = checkpoint
        self.optimizer = optimizer
        self.max_batch = max_batch
        self.checkpoint_every = checkpoint_every
        self.chunk_size = chunk_size
        self.method = method

    # ------------------------------------------------------------------ fitting
    def fit(self, targets: Any, weights: Any = None, *, callback: Callable[[dict], None] | None = None,
            verbose: bool = False) -> SemiDiscreteOT:
        """Solve for the heights h. `targets` (N, d) points y_i or a DiscreteMeasure; weights ν."""
        nu_measure = targets if isinstance(targets, DiscreteMeasure) else DiscreteMeasure(targets, weights)
        if isinstance(targets, DiscreteMeasure) and weights is not None:
            raise BrenierError("weights: pass weights inside the DiscreteMeasure, not twice")
        y, nu = nu_measure.points, nu_measure.weights
        src = make_source(self.source, y.shape[1])
        cfg = self._settings(len(y))
        cfg.direct = y.shape[1] <= 3
        self._set_problem(src, y, nu)
        if len(y) == 1:  # one cell holds everything
            self.heights_, self.n_iter_, self.converged_, self.history_ = np.zeros(1), 0, True, []
            return self
        if self.method_ == "newton":
            from .exact import solve_exact

            h, self.n_iter_, self.converged_, self.history_ = solve_exact(
                src, y, nu, tol=EXACT_TOL,
                max_iter=max(cfg.max_iter, 200), callback=callback, verbose=verbose)
            self.heights_ = h - h.mean()
            return self
        seed = self.seed
        stream = src.stream(None if seed is None else seed)
        eval_stream = src.stream(None if seed is None else seed + 7919)
        state = self._resume(cfg) if self.checkpoint is not None else None
        if state is None:
            radius = float(np.sqrt(np.mean(np.sum((src.sample(4096, seed=1) - src.mean()) ** 2, axis=1))))
            h0 = _solver.initial_heights(y, src.mean(), radius)
            if cfg.lr < 0:  # adam default: 1 % of the spread of the scores ⟨x, y_i⟩
                cfg.lr = 0.01 * radius * float(np.sqrt(np.mean(np.sum((y - y.mean(0)) ** 2, 1))))
            state = _solver.SolverState(h=h0, batch=cfg.batch, alpha=min(1.0, cfg.lr))
            if cfg.optimizer == "adam":
                state.adam_m, state.adam_v, state.h_avg = np.zeros(len(y)), np.zeros(len(y)), h0.copy()
        else:
            stream.set_state(state.stream)
            eval_stream.set_state(state.eval_stream)
        on_step = callback
        if verbose:
            on_step = _print_step if callback is None else (lambda r: (callback(r), _print_step(r)))
        save = None
        if self.checkpoint is not None:
            every = check_positive_int(self.checkpoint_every, "checkpoint_every")
            save = lambda st: st.step % every == 0 and self._write_checkpoint(st, cfg)  # noqa: E731
        state = _solver.run(state, self._assigner, stream, eval_stream, nu, cfg, on_step, save)
        if save is not None:
            self._write_checkpoint(state, cfg)
        self.heights_ = state.h - state.h.mean()
        self.n_iter_ = state.step
        self.converged_ = bool(state.converged)
        self.history_ = state.history
        return self

    def _settings(self, n: int) -> _solver.Settings:
        check_choice(self.optimizer, "optimizer", ("newton", "adam"))
        tol = check_positive_float(self.tol, "tol")
        max_iter = check_positive_int(self.max_iter, "max_iter")
        max_batch = check_positive_int(self.max_batch, "max_batch")
        batch = check_positive_int(self.batch_size, "batch_size", allow_none=True)
        batch = min(batch or max(64 * n, 1 << 16), max_batch)
        chunk = check_positive_int(self.chunk_size, "chunk_size")
        if self.lr is None:
            lr = 1.0 if self.optimizer == "newton" else -1.0  # adam: set from the score spread
        else:
            lr = check_positive_float(self.lr, "lr")
        resolve_backend(self.backend, self.device)
        if self.seed is not None and not isinstance(self.seed, (int, np.integer)):
            raise BrenierError(f"seed: expected an integer or None, got {self.seed!r}")
        return _solver.Settings(tol, max_iter, lr, batch, max_batch, chunk, self.optimizer)

    def _set_problem(self, src: SourceMeasure, y: np.ndarray, nu: np.ndarray) -> None:
        self.method_ = self._resolve_method(src)
        self.source_ = src
        self.targets_ = y
        self.weights_ = nu
        self._assigner = Assigner(y, src.mean(), self.backend, self.device)

    def _resolve_method(self, src: SourceMeasure) -> str:
        check_choice(self.method, "method", ("auto", "newton", "monte-carlo"))
        if self.method == "monte-carlo":
            return "monte-carlo"
        from .exact import source_domain

        try:
            source_domain(src)
        except BrenierError:
            if self.method == "newton":
                raise
            return "monte-carlo"
        return "newton"

    # ------------------------------------------------------------------ checkpoints
    def _fingerprint(self, cfg: _solver.Settings) -> str:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.targets_).tobytes())
        h.update(np.ascontiguousarray(self.weights_).tobytes())
        h.update(json.dumps(self.source_.to_dict(), sort_keys=True).encode())
        for arr in self.source_.arrays().values():
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(json.dumps([self.seed, cfg.lr, cfg.batch, cfg.max_batch, cfg.chunk, cfg.optimizer,
                             self.backend]).encode())
        return h.hexdigest()

    def _write_checkpoint(self, st: _solver.SolverState, cfg: _solver.Settings) -> None:
        arrays = {"h": st.h}
        if st.prev_h is not None:
            arrays["prev_h"] = st.prev_h
        if st.W is not None:
            coo = st.W.tocoo()
            arrays |= {"W_row": coo.row.astype(np.int64), "W_col": coo.col.astype(np.int64),
                       "W_val": coo.data}
        for name in ("adam_m", "adam_v", "h_avg"):
            if getattr(st, name) is not None:
                arrays[name] = getattr(st, name)
        meta = {"fingerprint": self._fingerprint(cfg), "step": st.step, "batch": st.batch,
                "alpha": st.alpha, "damping": st.damping,
                "prev_chi2": None if not np.isfinite(st.prev_chi2) else st.prev_chi2,
                "converged": st.converged, "history": st.history, "stream": st.stream,
                "eval_stream": st.eval_stream, "elapsed": st.elapsed}
        io.save_tensors(self.checkpoint, arrays, CHECKPOINT_FORMAT, FORMAT_VERSION, meta)

    def _resume(self, cfg: _solver.Settings) -> _solver.SolverState | None:
        path = Path(self.checkpoint)
        if not path.exists():
            return None
        arrays, meta, _ = io.load_tensors(path, CHECKPOINT_FORMAT, FORMAT_VERSION, "checkpoint")
        if meta.get("fingerprint") != self._fingerprint(cfg):
            raise BrenierError(
                f"checkpoint: {path} was written for a different problem or settings; "
                "delete it or pass another path"
            )
        n = len(self.targets_)
        W = None
        if "W_val" in arrays:
            W = sp.coo_matrix((arrays["W_val"], (arrays["W_row"], arrays["W_col"])), shape=(n, n)).tocsr()
        prev = meta["prev_chi2"]
        return _solver.SolverState(
            h=arrays["h"], step=meta["step"], batch=meta["batch"], alpha=meta["alpha"],
            damping=float(meta.get("damping", 0.0)),
            prev_chi2=np.inf if prev is None else prev, prev_h=arrays.get("prev_h"), W=W,
            adam_m=arrays.get("adam_m"), adam_v=arrays.get("adam_v"), h_avg=arrays.get("h_avg"),
            converged=meta["converged"], history=meta["history"], stream=meta["stream"],
            eval_stream=meta["eval_stream"], elapsed=meta["elapsed"])

    # ------------------------------------------------------------------ using the potential
    def _check_fitted(self) -> None:
        if not hasattr(self, "heights_"):
            raise BrenierError("this SemiDiscreteOT is not fitted yet: call fit(targets) or load(path)")

    def _points(self, x: Any, name: str = "x") -> np.ndarray:
        self._check_fitted()
        return check_points(x, name, dim=self.targets_.shape[1], min_rows=0)

    def _top_k(self, x: np.ndarray, k: int):
        self._assigner.set_heights(self.heights_)
        out_i = np.empty((len(x), k), np.int64)
        out_s = np.empty((len(x), k), np.float64)
        for a in range(0, len(x), self.chunk_size):
            i, s = self._assigner.top_k(x[a:a + self.chunk_size], k, with_offset=True)
            out_i[a:a + self.chunk_size], out_s[a:a + self.chunk_size] = i, s
        return out_i, out_s

    def assign(self, x: Any) -> Any:
        """Index (M,) of the cell W_i(h) ∋ x: argmax_i ⟨x, y_i⟩ + h_i."""
        xs = self._points(x)
        return like(self._top_k(xs, 1)[0][:, 0], x)

    def top_k(self, x: Any, k: int) -> tuple[Any, Any]:
        """(indices (M, k), scores (M, k)) of the k best cells, in decreasing score order."""
        xs = self._points(x)
        k = check_positive_int(k, "k")
        if k > len(self.targets_):
            raise BrenierError(f"k: expected at most {len(self.targets_)} (number of targets), got {k}")
        i, s = self._top_k(xs, k)
        return like(i, x), like(s, x)

    def transport(self, x: Any) -> Any:
        """T(x) = ∇u_h(x) = y_{assign(x)}, shape (M, d)."""
        xs = self._points(x)
        return like(self.targets_[self._top_k(xs, 1)[0][:, 0]], x)

    def potential(self, x: Any) -> Any:
        """u_h(x) = max_i ⟨x, y_i⟩ + h_i, shape (M,)."""
        xs = self._points(x)
        return like(self._top_k(xs, 1)[1][:, 0], x)

    def cell_masses(self, n_samples: int | None = None, seed: int | None = None) -> np.ndarray:
        """μ(W_i(h)), shape (N,): exact for the power-diagram method unless `n_samples` is given,
        else a Monte-Carlo estimate from `n_samples` fresh source samples."""
        self._check_fitted()
        if self.method_ == "newton" and n_samples is None:
            from .exact import exact_cell_masses

            return exact_cell_masses(self.source_, self.targets_, self.heights_)
        n = check_positive_int(n_samples, "n_samples", allow_none=True) or default_sample_size(
            len(self.targets_))
        stream = self.source_.stream(seed)
        counts = np.zeros(len(self.targets_), np.int64)
        self._assigner.set_heights(self.heights_)
        done = 0
        while done < n:
            m = min(self.chunk_size, n - done)
            counts += np.bincount(self._assigner.assign(stream.draw(m)), minlength=len(counts))
            done += m
        return counts / n

    def mass_error(self, n_samples: int | None = None, seed: int | None = None) -> dict:
        """{'l1': Σ|μ(W_i) − ν_i|, 'max_rel': max |μ(W_i) − ν_i|/ν_i, 'chi2': unbiased Σ (·)²/ν_i}."""
        if self.method_ == "newton" and n_samples is None:  # exact masses: no sampling noise
            return _solver.mass_error_from(self.cell_masses(), self.weights_, 1 << 62)
        n = check_positive_int(n_samples, "n_samples", allow_none=True) or default_sample_size(
            len(self.targets_))
        return _solver.mass_error_from(self.cell_masses(n, seed), self.weights_, n)

    def wasserstein(self, p: float = 2, n_samples: int | None = None, seed: int | None = None) -> float:
        """W_p(μ, ν) ≈ (mean |x − T(x)|^p)^(1/p) over `n_samples` source samples."""
        self._check_fitted()
        p = check_positive_float(p, "p")
        n = check_positive_int(n_samples, "n_samples", allow_none=True) or (1 << 18)
        stream = self.source_.stream(seed)
        self._assigner.set_heights(self.heights_)
        total, done = 0.0, 0
        while done < n:
            m = min(self.chunk_size, n - done)
            x = stream.draw(m).astype(np.float64)
            d = np.linalg.norm(x - self.targets_[self._assigner.assign(x)], axis=1)
            total += float(np.sum(d**p))
            done += m
        return (total / n) ** (1 / p)

    def singular_set(self, threshold: float | str = "auto", n_samples: int | None = None,
                     seed: int | None = 0):
        """Adjacent cell pairs, their dihedral angles and which are singular (see ot.singular);
        computed once per heights and arguments, shared with `generate`."""
        from .extend import cached_singular_set

        self._check_fitted()
        return cached_singular_set(self, threshold=threshold, n_samples=n_samples, seed=seed)

    def generate(self, n: int, seed: int | None = None, threshold: float | str = "auto",
                 extension: str = "pl", n_samples: int | None = None,
                 qmc: bool | str = "auto") -> np.ndarray:
        """n new points by the (singular-aware) piecewise-linear extension of T (see ot.extend);
        `qmc`: scrambled Sobol source points (True), i.i.d. (False) or "auto" (Sobol for a cube)."""
        from .extend import generate

        self._check_fitted()
        return generate(self, n, seed=seed, threshold=threshold, extension=extension,
                        n_samples=n_samples, qmc=qmc)

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> None:
        """Write targets, weights, heights and settings to a safetensors file (atomic)."""
        self._check_fitted()
        arrays = {"targets": self.targets_, "weights": self.weights_, "heights": self.heights_}
        arrays |= self.source_.arrays()
        meta = {"source": self.source_.to_dict(), "n_iter": self.n_iter_, "converged": self.converged_,
                "history": self.history_, "params": self._params()}
        io.save_tensors(path, arrays, FORMAT, FORMAT_VERSION, meta)

    def _params(self) -> dict:
        return {"tol": self.tol, "max_iter": self.max_iter, "lr": self.lr, "batch_size": self.batch_size,
                "seed": self.seed, "backend": self.backend, "optimizer": self.optimizer,
                "max_batch": self.max_batch, "chunk_size": self.chunk_size, "method": self.method}

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "cpu", backend: str = "auto") -> SemiDiscreteOT:
        """Read a file written by `save`."""
        arrays, meta, _ = io.load_tensors(path, FORMAT, FORMAT_VERSION, "path")
        try:
            src = source_from_dict(meta["source"], arrays)
            params = {k: v for k, v in meta["params"].items() if k != "backend"}
            obj = cls(src, device=device, backend=backend, **params)
            y = check_points(arrays["targets"], "targets")
            nu = np.asarray(arrays["weights"], np.float64)
            h = np.asarray(arrays["heights"], np.float64)
        except (KeyError, TypeError) as exc:
            raise BrenierError(f"path: {path} is missing a field ({exc})") from None
        if nu.shape != (len(y),) or h.shape != (len(y),) or not np.isfinite(h).all():
            raise BrenierError(f"path: {path} has inconsistent or non-finite arrays")
        obj._set_problem(src, y, nu)
        obj.heights_, obj.n_iter_ = h, int(meta["n_iter"])
        obj.converged_, obj.history_ = bool(meta["converged"]), list(meta["history"])
        return obj

    def __repr__(self) -> str:
        state = f"fitted N={len(self.targets_)}" if hasattr(self, "heights_") else "not fitted"
        return f"SemiDiscreteOT(source={self.source!r}, {state})"


def _print_step(rec: dict) -> None:
    print(f"step {rec['step']:4d}  batch {rec['batch']:>9d}  E {rec['energy']:+.6e}  "
          f"chi2 {rec['chi2']:.3e}  max_rel {rec['max_rel']:.3f}  alpha {rec['alpha']:.3f}")


def solve(source: Any, targets: Any, weights: Any = None, **kwargs) -> SemiDiscreteOT:
    """One call: `SemiDiscreteOT(source, **kwargs).fit(targets, weights)`."""
    return SemiDiscreteOT(source, **kwargs).fit(targets, weights)
