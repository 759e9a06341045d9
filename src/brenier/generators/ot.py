"""The OT generator on vectors: semi-discrete OT from μ to the data, sampled through the
singular-aware piecewise-linear extension T̃ of T = ∇u_h (`brenier.ot.extension`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..measures import make_source
from ..ot import SemiDiscreteOT
from ..ot.assign import Assigner
from ..ot.extension import EXTENSIONS, generate, use_qmc
from ..validation import ROWS, check_choice, check_fitted, check_points, check_positive_int


class OTGenerator:
    """A generator with the common interface: `fit(data)`, then `sample(n, seed=None)`.

    fit(data) solves semi-discrete OT from `source` to ν = the empirical measure of the data. When
    `n_targets` is smaller than the data, ν is summarised: n_targets data points y_i drawn at
    random carry the weights ν_i = share of the data whose nearest summary point is y_i (a
    Voronoi quantisation, which keeps the mass of every region of the data); the solver's cost
    grows with the number of cells. sample(n, seed) returns T̃(x), x ~ μ, with the chosen
    extension; `qmc` (True, False or "auto": Sobol for a uniform cube source) chooses scrambled
    Sobol or i.i.d. source points x (`brenier.ot.extension.source_sample`).
    """

    def __init__(self, source: Any = "uniform", *, n_targets: int | None = None,
                 extension: str = "pl", threshold: float | str = "auto",
                 n_samples: int | None = None, seed: int | None = 0, qmc: bool | str = "auto",
                 **solver_kwargs: Any):
        self.source = source
        self.n_targets = n_targets
        self.extension = extension
        self.threshold = threshold
        self.n_samples = n_samples
        self.seed = seed
        self.qmc = qmc
        self.solver_kwargs = solver_kwargs

    def fit(self, data: Any, verbose: bool = False) -> OTGenerator:
        """Solve OT from μ to the data (summarised to `n_targets` weighted points y_i)."""
        check_choice(self.extension, "extension", EXTENSIONS)
        x = check_points(data, "data")
        use_qmc(self.qmc, make_source(self.source, x.shape[1]))  # refuse before the solve
        m = check_positive_int(self.n_targets, "n_targets", allow_none=True)
        y, w = np.unique(x, axis=0, return_counts=True)  # distinct points with multiplicities
        if m is not None and m < len(y):
            y = y[np.random.default_rng(self.seed).choice(len(y), m, replace=False)]
            nearest = Assigner(y, None, "auto", "cpu")
            nearest.set_heights(-0.5 * np.sum(y**2, axis=1))  # argmax ⟨x, y⟩ − |y|²/2 = nearest
            w = np.zeros(m)
            for a in range(0, len(x), ROWS):
                w += np.bincount(nearest.assign(x[a:a + ROWS]), minlength=m)
        self.targets_, self.weights_ = y, w / w.sum()
        self.model_ = SemiDiscreteOT(self.source, seed=self.seed, **self.solver_kwargs).fit(
            y, self.weights_, verbose=verbose)
        return self

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """n new points T̃(x), x ~ μ drawn from `seed`."""
        check_fitted(self, "model_", "call fit(data) first")
        return generate(self.model_, n, seed=seed, threshold=self.threshold,
                        extension=self.extension, n_samples=self.n_samples, qmc=self.qmc)

    generate = sample
