"""SemiDiscreteOT: settings → problem (μ, y, ν) → solver → Brenier potential u_h, behind one
scikit-learn-style estimator (constructor arguments stored untouched, fitted state in `*_`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import io
from ..measures import SourceMeasure, source_from_dict
from ..validation import (
    BrenierError,
    check_choice,
    check_fitted,
    check_points,
    check_positive_float,
    check_positive_int,
)
from .assign import Assigner, resolve_backend
from .potential import DEFAULT_CHUNK, BrenierPotential
from .problem import TransportProblem
from .result import SolveResult, as_record
from .solvers import checkpoint as ckpt
from .solvers import monte_carlo as mc

FORMAT = "brenier.SemiDiscreteOT"
FORMAT_VERSION = 1
NOT_FITTED = "call fit(targets) or SemiDiscreteOT.load(path) first"
METHODS = ("auto", "newton", "monte-carlo")
STARTS = ("auto", "voronoi", "multiscale")
MULTISCALE_MIN = 256  # start="auto" solves a coarse problem first from this many targets on
FIRST_BATCH_PER_CELL = 16  # default first batch: 16 N samples (the noise N/B = 1/16 is far below the
#                           starting χ², and `next_batch` grows it as the error falls)


class SemiDiscreteOT:
    """Semi-discrete optimal transport from a source measure μ to Diracs ν by Brenier heights h.

    Args:
        source: a `brenier.measures` source (UniformCube, UniformBall, Gaussian, Empirical,
            UniformPolytope, GridDensity) or a name ('uniform', 'ball', 'gaussian') sized to d.
        tol: Monte-Carlo stopping test: the unbiased χ² mass error Σ (μ(W_i) − ν_i)²/ν_i, measured
            on samples drawn after h was fixed, is ≤ tol (2.5e-3 ≈ 5 % RMS relative cell-mass error).
        exact_tol: stopping test of the exact power-diagram solver: max_i |μ(W_i) − ν_i|/ν_i ≤
            exact_tol, with exact masses.
        max_iter: maximum number of optimisation steps (the exact solver takes at least 200).
        lr: step size: the Newton damping bound α ≤ lr (default 1.0), or Adam's learning rate in
            height units (default: 1 % of the score spread).
        batch_size: source samples in the first step (default 16 N, at least 65536); later
            batches follow the solver's error model (`monte_carlo.next_batch`), up to `max_batch`.
        seed: seed of every random stream (training, evaluation).
        device: 'cpu' or a torch device such as 'cuda'.
        backend: 'auto' (faiss on CPU when installed, else torch), 'faiss', 'torch' or 'kdtree'.
        checkpoint: path of a checkpoint file; saved every `checkpoint_every` steps and resumed from
            when present with the same problem and settings.
        optimizer: Monte-Carlo optimiser: 'newton' (stochastic damped Newton, default) or 'adam'.
        method: 'auto' (the exact power-diagram Newton solver where it applies — d ∈ {2, 3} and a
            box, polygon, 2-D disc or pixel-density source — else Monte Carlo), 'newton' (exact;
            an error where it does not apply) or 'monte-carlo'.
        start: Monte-Carlo starting heights: 'voronoi' (the targets' Voronoi diagram scaled onto μ),
            'multiscale' (k-means clusters of the targets solved first as single Diracs, each
            cluster then scaled onto its coarse cell; Mérigot 2011) or 'auto' (multiscale from
            MULTISCALE_MIN targets on).

    Attributes (after `fit`): heights_ (N,), n_iter_, converged_, history_ (records of
    `brenier.ot.result`), result_ (the SolveResult), targets_ (N, d), weights_ (N,), source_,
    method_ ('newton' or 'monte-carlo'), problem_, potential_ (the BrenierPotential).
    """

    def __init__(self, source: Any = "uniform", *, tol: float = 2.5e-3, max_iter: int = 100,
                 lr: float | None = None, batch_size: int | None = None, seed: int | None = 0,
                 device: str = "cpu", backend: str = "auto", checkpoint: str | os.PathLike | None = None,
                 optimizer: str = "newton", max_batch: int = 1 << 24, checkpoint_every: int = 1,
                 chunk_size: int = DEFAULT_CHUNK, method: str = "auto", exact_tol: float = 1e-9,
                 start: str = "voronoi"):
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
        self.exact_tol = exact_tol
        self.start = start

    # ------------------------------------------------------------------ fitting
    def fit(self, targets: Any, weights: Any = None, *, callback: Callable[[dict], None] | None = None,
            verbose: bool = False) -> SemiDiscreteOT:
        """Solve for the heights h. `targets` (N, d) points y_i or a DiscreteMeasure; weights ν.
        `callback` receives every step's record (`brenier.ot.result.RECORD_KEYS` + detail)."""
        problem = TransportProblem.build(self.source, targets, weights)
        self._check_settings()
        method = self._resolve_method(problem.source)
        if verbose:
            callback = _print_step if callback is None else _both(callback, _print_step)
        if problem.n == 1:  # one cell holds everything
            result = SolveResult(np.zeros(1), 0, True, [], method=method)
        elif method == "newton":
            from .solvers.exact import solve_exact

            result = solve_exact(problem.source, problem.targets, problem.weights,
                                 tol=check_positive_float(self.exact_tol, "exact_tol"),
                                 max_iter=max(self.max_iter, 200), callback=callback)
        else:
            result = self._solve_monte_carlo(problem, callback)
        self._set_fitted(problem, method, result)
        return self

    def _check_settings(self) -> None:
        check_choice(self.optimizer, "optimizer", ("newton", "adam"))
        check_choice(self.start, "start", STARTS)
        check_positive_float(self.tol, "tol")
        check_positive_int(self.max_iter, "max_iter")
        check_positive_int(self.chunk_size, "chunk_size")
        check_positive_int(self.max_batch, "max_batch")
        check_positive_int(self.batch_size, "batch_size", allow_none=True)
        if self.lr is not None:
            check_positive_float(self.lr, "lr")
        resolve_backend(self.backend, self.device)
        if self.seed is not None and not isinstance(self.seed, (int, np.integer)):
            raise BrenierError(f"seed: expected an integer or None, got {self.seed!r}")

    def _resolve_method(self, src: SourceMeasure) -> str:
        check_choice(self.method, "method", METHODS)
        if self.method == "monte-carlo":
            return "monte-carlo"
        from .cells.exact import source_domain

        try:
            source_domain(src)
        except BrenierError:
            if self.method == "newton":
                raise
            return "monte-carlo"
        return "newton"

    def _mc_settings(self, problem: TransportProblem, radius: float) -> mc.Settings:
        max_batch = check_positive_int(self.max_batch, "max_batch")
        batch = check_positive_int(self.batch_size, "batch_size", allow_none=True)
        batch = min(batch or max(FIRST_BATCH_PER_CELL * problem.n, 1 << 16), max_batch)
        if self.lr is not None:
            lr = check_positive_float(self.lr, "lr")
        elif self.optimizer == "newton":
            lr = 1.0
        else:  # adam: 1 % of the spread of the scores ⟨x, y_i⟩
            y = problem.targets
            lr = 0.01 * radius * float(np.sqrt(np.mean(np.sum((y - y.mean(0)) ** 2, 1))))
        return mc.Settings(self.tol, self.max_iter, lr, batch, max_batch, self.chunk_size, self.optimizer,
                           direct=problem.dim <= 3)

    def _solve_monte_carlo(self, problem: TransportProblem, callback) -> SolveResult:
        radius = problem.source_radius()
        cfg = self._mc_settings(problem, radius)
        seed = self.seed
        stream = problem.source.stream(seed)
        eval_stream = problem.source.stream(None if seed is None else seed + 7919)
        fingerprint = problem.fingerprint(seed, cfg.lr, cfg.batch, cfg.max_batch, cfg.chunk, cfg.optimizer,
                                          self.backend, self.start)
        state = None
        if self.checkpoint is not None:
            state = ckpt.read_checkpoint(self.checkpoint, fingerprint, problem.n)
        if state is None:
            h0 = self._start_heights(problem, radius)
            state = mc.SolverState(h=h0, batch=cfg.batch, alpha=min(1.0, cfg.lr))
            if cfg.optimizer == "adam":
                state.adam_m, state.adam_v, state.h_avg = np.zeros(problem.n), np.zeros(problem.n), h0.copy()
        else:
            stream.set_state(state.stream)
            eval_stream.set_state(state.eval_stream)
        save = None
        if self.checkpoint is not None:
            every = check_positive_int(self.checkpoint_every, "checkpoint_every")

            def save(st: mc.SolverState) -> None:
                if st.step % every == 0:
                    ckpt.write_checkpoint(self.checkpoint, st, fingerprint)

        assigner = Assigner(problem.targets, problem.source.mean(), self.backend, self.device)
        result = mc.run(state, assigner, stream, eval_stream, problem.weights, cfg, callback, save)
        if self.checkpoint is not None:
            ckpt.write_checkpoint(self.checkpoint, state, fingerprint)
        return result

    def _start_heights(self, problem: TransportProblem, radius: float) -> np.ndarray:
        from .solvers.start import cell_moments, coarse_to_fine, coarsen, sampled_start

        multiscale = self.start == "multiscale" or (self.start == "auto" and problem.n >= MULTISCALE_MIN)
        k = int(round(np.sqrt(problem.n)))
        if not multiscale or k < 2:
            return sampled_start(problem.targets, problem.source.mean(), radius)
        centres, w, labels = coarsen(problem.targets, problem.weights, k, self.seed)
        coarse = SemiDiscreteOT(problem.source, tol=self.tol, max_iter=self.max_iter, seed=self.seed,
                                device=self.device, backend=self.backend, method="monte-carlo",
                                chunk_size=self.chunk_size).fit(centres, w)
        sample = problem.source.sample(max(1 << 16, 64 * len(centres)), seed=None if self.seed is None
                                       else self.seed + 1)
        means, radii = cell_moments(coarse.assign, sample, len(centres))
        return coarse_to_fine(problem.targets, problem.weights, labels, centres, w, coarse.heights_,
                              means, radii)

    def _set_fitted(self, problem: TransportProblem, method: str, result: SolveResult) -> None:
        self.problem_, self.method_, self.result_ = problem, method, result
        self.source_, self.targets_, self.weights_ = problem.source, problem.targets, problem.weights
        self.heights_ = result.heights
        self.n_iter_, self.converged_, self.history_ = result.n_iter, result.converged, result.history
        self.potential_ = BrenierPotential(problem, result.heights, exact=method == "newton",
                                           backend=self.backend, device=self.device,
                                           chunk_size=self.chunk_size)

    # ------------------------------------------------------------------ using the potential
    def _fitted(self) -> BrenierPotential:
        check_fitted(self, "potential_", NOT_FITTED)
        return self.potential_

    def assign(self, x: Any) -> Any:
        """Index (M,) of the cell W_i(h) ∋ x: argmax_i ⟨x, y_i⟩ + h_i."""
        return self._fitted().assign(x)

    def top_k(self, x: Any, k: int) -> tuple[Any, Any]:
        """(indices (M, k), scores (M, k)) of the k best cells, in decreasing score order."""
        return self._fitted().top_k(x, k)

    def transport(self, x: Any) -> Any:
        """T(x) = ∇u_h(x) = y_{assign(x)}, shape (M, d)."""
        return self._fitted().transport(x)

    def potential(self, x: Any) -> Any:
        """u_h(x) = max_i ⟨x, y_i⟩ + h_i, shape (M,)."""
        return self._fitted().value(x)

    def cell_masses(self, n_samples: int | None = None, seed: int | None = None) -> np.ndarray:
        """μ(W_i(h)), shape (N,): exact for the power-diagram method unless `n_samples` is given,
        else a Monte-Carlo estimate from `n_samples` fresh source samples."""
        return self._fitted().cell_masses(n_samples, seed)

    def mass_error(self, n_samples: int | None = None, seed: int | None = None) -> dict:
        """{'l1': Σ|μ(W_i) − ν_i|, 'max_rel': max |μ(W_i) − ν_i|/ν_i, 'chi2': unbiased Σ (·)²/ν_i, …}."""
        return self._fitted().mass_error(n_samples, seed)

    def wasserstein(self, p: float = 2, n_samples: int | None = None, seed: int | None = None) -> float:
        """W_p(μ, ν) ≈ (mean |x − T(x)|^p)^(1/p) over `n_samples` source samples."""
        return self._fitted().wasserstein(p, n_samples, seed)

    def singular_set(self, threshold: float | str = "auto", n_samples: int | None = None,
                     seed: int | None = 0):
        """Adjacent cell pairs, their dihedral angles and which are singular (`brenier.ot.singular`);
        computed once per heights and arguments, shared with `generate`."""
        from .extension import cached_singular_set

        self._fitted()
        return cached_singular_set(self, threshold=threshold, n_samples=n_samples, seed=seed)

    def generate(self, n: int, seed: int | None = None, threshold: float | str = "auto",
                 extension: str = "pl", n_samples: int | None = None,
                 qmc: bool | str = "auto") -> np.ndarray:
        """n new points by the (singular-aware) piecewise-linear extension of T (`brenier.ot.extension`);
        `qmc`: scrambled Sobol source points (True), i.i.d. (False) or "auto" (Sobol for a cube)."""
        from .extension import generate

        self._fitted()
        return generate(self, n, seed=seed, threshold=threshold, extension=extension,
                        n_samples=n_samples, qmc=qmc)

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> None:
        """Write targets, weights, heights and settings to a safetensors file (atomic)."""
        self._fitted()
        arrays = {"targets": self.targets_, "weights": self.weights_, "heights": self.heights_}
        arrays |= self.source_.arrays()
        meta = {"source": self.source_.to_dict(), "n_iter": self.n_iter_, "converged": self.converged_,
                "history": self.history_, "params": self._params(), "method": self.method_}
        io.save_tensors(path, arrays, FORMAT, FORMAT_VERSION, meta)

    def _params(self) -> dict:
        return {"tol": self.tol, "max_iter": self.max_iter, "lr": self.lr, "batch_size": self.batch_size,
                "seed": self.seed, "backend": self.backend, "optimizer": self.optimizer,
                "max_batch": self.max_batch, "chunk_size": self.chunk_size, "method": self.method,
                "exact_tol": self.exact_tol, "start": self.start}

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
            history = [as_record(r) for r in meta["history"]]
            result = SolveResult(h, int(meta["n_iter"]), bool(meta["converged"]), history)
        except (KeyError, TypeError) as exc:
            raise BrenierError(f"path: {path} is missing a field ({exc})") from None
        if nu.shape != (len(y),) or h.shape != (len(y),) or not np.isfinite(h).all():
            raise BrenierError(f"path: {path} has inconsistent or non-finite arrays")
        problem = TransportProblem(src, y, nu)
        obj._set_fitted(problem, meta.get("method") or obj._resolve_method(src), result)
        return obj

    def __repr__(self) -> str:
        state = f"fitted N={len(self.targets_)}" if hasattr(self, "potential_") else "not fitted"
        return f"SemiDiscreteOT(source={self.source!r}, {state})"


def _both(first: Callable[[dict], None], second: Callable[[dict], None]) -> Callable[[dict], None]:
    return lambda rec: (first(rec), second(rec))


def _print_step(rec: dict) -> None:
    batch = "" if np.isnan(rec["batch"]) else f"  batch {int(rec['batch']):>9d}"
    print(f"step {rec['step']:4d}{batch}  E {rec['energy']:+.6e}  chi2 {rec['chi2']:.3e}  "
          f"max_rel {rec['max_rel']:.3f}  step {rec['step_length']:.3f}")


def solve(source: Any, targets: Any, weights: Any = None, **kwargs) -> SemiDiscreteOT:
    """One call: `SemiDiscreteOT(source, **kwargs).fit(targets, weights)`."""
    return SemiDiscreteOT(source, **kwargs).fit(targets, weights)
