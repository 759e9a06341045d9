"""What every solver returns: one `SolveResult` whose history holds one record shape.

A record has exactly the keys of `RECORD_KEYS` (NaN where a value does not apply to the solver
that wrote it) plus `detail`, a dict of solver-specific diagnostics that callers never need:

    step         1, 2, …                      (steps of every stage of one solve)
    chi2         Σ_i (μ(W_i) − ν_i)²/ν_i      (Monte Carlo: unbiased estimate on fresh samples)
    max_rel      max_i |μ(W_i) − ν_i|/ν_i
    l1           Σ_i |μ(W_i) − ν_i|           (twice the total-variation error)
    energy       E(h) = ∫ u_h dμ − Σ_i h_i ν_i
    step_length  α (Monte-Carlo Newton / Adam learning rate) or τ (exact Newton line search)
    batch        source samples behind the estimate (NaN for exact masses)
    seconds      wall time since the solve started
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RECORD_KEYS = ("step", "chi2", "max_rel", "l1", "energy", "step_length", "batch", "seconds")


def step_record(detail: dict | None = None, **values: Any) -> dict:
    """A history record: every key of RECORD_KEYS (NaN when not given) and `detail`."""
    unknown = set(values) - set(RECORD_KEYS)
    if unknown:
        raise KeyError(f"not record keys: {sorted(unknown)} (put solver-specific values in detail)")
    rec = {k: _plain(values.get(k, math.nan)) for k in RECORD_KEYS}
    rec["detail"] = {k: _plain(v) for k, v in (detail or {}).items()}
    return rec


def as_record(rec: dict) -> dict:
    """A record read from a file of any version: the common keys filled, the rest in `detail`
    (files written before the common record used `alpha`/`tau` for the step length)."""
    if "detail" in rec and set(RECORD_KEYS) <= set(rec):
        return rec
    values = {k: rec[k] for k in RECORD_KEYS if k in rec}
    values.setdefault("step_length", rec.get("alpha", rec.get("tau", math.nan)))
    detail = {k: v for k, v in rec.items() if k not in RECORD_KEYS}
    return step_record(detail, **values)


def _plain(v: Any) -> Any:
    """JSON-friendly scalars (numpy scalars become Python numbers)."""
    return v.item() if isinstance(v, np.generic) else v


def sampling_noise(masses: np.ndarray, nu: np.ndarray, n_samples: int) -> np.ndarray:
    """(N',) what n samples add on average to each term (μ̂_i − ν_i)²/ν_i of χ² (cells with
    ν_i > 0), estimated unbiasedly from μ̂: μ̂_i(1 − μ̂_i)/((n − 1) ν_i). Their sum ≈ (N − 1)/n is
    the raw χ²'s noise floor."""
    pos = nu > 0
    return masses[pos] * (1 - masses[pos]) / (max(n_samples - 1, 1) * nu[pos])


def mass_error(masses: np.ndarray, nu: np.ndarray, n_samples: int | None = None) -> dict:
    """Errors of the cell masses μ(W_i) against ν: l1, max_rel, chi2 and min_mass.

    With `n_samples` the masses are Monte-Carlo estimates μ̂ from that many samples and χ² is
    de-biased by their variance μ̂(1 − μ̂)/(n − 1); without it they are exact.
    """
    diff = masses - nu
    pos = nu > 0
    terms = diff[pos] ** 2 / nu[pos]
    if n_samples is not None:
        terms = terms - sampling_noise(masses, nu, n_samples)
    return {"l1": float(np.abs(diff).sum()),
            "max_rel": float(np.max(np.abs(diff[pos]) / nu[pos])),
            "chi2": float(np.sum(terms)),
            "min_mass": float(masses[pos].min())}


@dataclass(frozen=True)
class SolveResult:
    """Brenier heights h (N,) with mean 0, the steps taken, whether the stopping test held, and
    one record per step (see the module docstring)."""

    heights: np.ndarray
    n_iter: int
    converged: bool
    history: list[dict] = field(default_factory=list)
    method: str = ""

    @property
    def last(self) -> dict:
        """The last record, or a record of NaNs when no step was taken."""
        return self.history[-1] if self.history else step_record()
