"""Source measures μ we can sample from, and the registry that rebuilds them from saved files."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..validation import (
    BrenierError,
    check_points,
    check_positive_float,
    check_positive_int,
    to_numpy,
)


class SampleStream:
    """A resumable stream of samples from a source: `draw(n)`, `state()`, `set_state(s)`.

    Pseudo-random streams keep numpy's PCG64 state; quasi-random (Sobol) streams keep the
    scrambling seed and the count drawn so far, so a restored stream continues exactly.
    """

    def __init__(self, measure: SourceMeasure, seed: int | None):
        self.measure = measure
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.sobol = None
        self.drawn = 0
        if getattr(measure, "qmc", False):
            from scipy.stats import qmc

            self.sobol = qmc.Sobol(measure.dim, scramble=True, rng=np.random.default_rng(seed))

    def draw(self, n: int) -> np.ndarray:
        if self.sobol is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # balance warning for n not a power of two
                u = self.sobol.random(n)
            self.drawn += n
            return self.measure._from_unit_cube(u)
        self.drawn += n
        return self.measure._draw(n, self.rng)

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "drawn": self.drawn, "seed": self.seed}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        if self.sobol is not None:
            self.sobol.reset()
            self.sobol.fast_forward(int(state["drawn"]))
        self.drawn = int(state["drawn"])


class SourceMeasure:
    """A probability measure μ we can sample from."""

    dim: int
    kind: str = "source"

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """Draw n points, shape (n, d), float64."""
        n = check_positive_int(n, "n")
        return self.stream(seed).draw(n).astype(np.float64)

    def stream(self, seed: int | None = None) -> SampleStream:
        return SampleStream(self, seed)

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def to_dict(self) -> dict:
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays needed to rebuild the measure (saved beside `to_dict`)."""
        return {}

    def mean(self) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "kind")
        return f"{type(self).__name__}({args})"


def _vector(value: Any, dim: int, name: str) -> np.ndarray:
    arr = np.asarray(to_numpy(value, name), dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(dim, float(arr))
    if arr.shape != (dim,):
        raise BrenierError(f"{name}: expected a scalar or shape ({dim},), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise BrenierError(f"{name}: must be finite")
    return arr


class UniformCube(SourceMeasure):
    """Uniform measure on the box [low, high]^d; `qmc=True` draws scrambled Sobol points."""

    kind = "cube"

    def __init__(self, dim: int, low: float = -0.5, high: float = 0.5, qmc: bool = False):
        self.dim = check_positive_int(dim, "dim")
        self.low = _vector(low, self.dim, "low")
        self.high = _vector(high, self.dim, "high")
        if not (self.high > self.low).all():
            raise BrenierError(f"high: must exceed low in every coordinate, got low={low}, high={high}")
        self.qmc = bool(qmc)

    def _from_unit_cube(self, u: np.ndarray) -> np.ndarray:
        return (self.low + u * (self.high - self.low)).astype(np.float32)

    def _draw(self, n, rng):
        return self._from_unit_cube(rng.random((n, self.dim), dtype=np.float32))

    def mean(self) -> np.ndarray:
        return (self.low + self.high) / 2

    def to_dict(self) -> dict:
        scalar = lambda v: float(v[0]) if np.all(v == v[0]) else v.tolist()  # noqa: E731
        return {"kind": self.kind, "dim": self.dim, "low": scalar(self.low),
                "high": scalar(self.high), "qmc": self.qmc}


class UniformBall(SourceMeasure):
    """Uniform measure on the ball of given radius (and centre) in R^d."""

    kind = "ball"

    def __init__(self, dim: int, radius: float = 1.0, center: Any = 0.0):
        self.dim = check_positive_int(dim, "dim")
        self.radius = check_positive_float(radius, "radius")
        self.center = _vector(center, self.dim, "center")

    def _draw(self, n, rng):
        g = rng.standard_normal((n, self.dim), dtype=np.float32)
        g /= np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-30)
        r = rng.random(n, dtype=np.float32) ** (1.0 / self.dim)
        return (self.center + self.radius * r[:, None] * g).astype(np.float32)

    def mean(self) -> np.ndarray:
        return self.center.copy()

    def to_dict(self) -> dict:
        c = self.center
        return {"kind": self.kind, "dim": self.dim, "radius": self.radius,
                "center": float(c[0]) if np.all(c == c[0]) else c.tolist()}


class Gaussian(SourceMeasure):
    """Isotropic (or diagonal) Gaussian N(mean, std²)."""

    kind = "gaussian"

    def __init__(self, dim: int, mean: Any = 0.0, std: Any = 1.0):
        self.dim = check_positive_int(dim, "dim")
        self.loc = _vector(mean, self.dim, "mean")
        self.std = _vector(std, self.dim, "std")
        if not (self.std > 0).all():
            raise BrenierError(f"std: must be > 0, got {std!r}")

    def _draw(self, n, rng):
        return (self.loc + self.std * rng.standard_normal((n, self.dim), dtype=np.float32)).astype(
            np.float32
        )

    def mean(self) -> np.ndarray:
        return self.loc.copy()

    def to_dict(self) -> dict:
        scalar = lambda v: float(v[0]) if np.all(v == v[0]) else v.tolist()  # noqa: E731
        return {"kind": self.kind, "dim": self.dim, "mean": scalar(self.loc), "std": scalar(self.std)}


class Empirical(SourceMeasure):
    """The empirical measure of given points, sampled with replacement."""

    kind = "empirical"

    def __init__(self, points: Any):
        self.points = check_points(points, "points")
        self.dim = self.points.shape[1]
        self._points32 = self.points.astype(np.float32)

    def _draw(self, n, rng):
        return self._points32[rng.integers(0, len(self.points), n)]

    def mean(self) -> np.ndarray:
        return self.points.mean(axis=0)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "dim": self.dim, "n": int(len(self.points))}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"source_points": self.points}

    def __repr__(self):
        return f"Empirical(points=<{len(self.points)} x {self.dim}>)"


_SOURCES = {c.kind: c for c in (UniformCube, UniformBall, Gaussian, Empirical)}


def register_source(cls: type[SourceMeasure]) -> type[SourceMeasure]:
    """Make a source kind loadable from saved files (used by later source types)."""
    _SOURCES[cls.kind] = cls
    return cls


def source_from_dict(spec: dict, arrays: dict[str, np.ndarray] | None = None) -> SourceMeasure:
    """Rebuild a source measure from `to_dict()` output (and `arrays()` for data-backed ones)."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in _SOURCES:
        raise BrenierError(f"source: unknown kind {kind!r} (known: {sorted(_SOURCES)})")
    cls = _SOURCES[kind]
    if hasattr(cls, "from_saved"):
        return cls.from_saved(spec, arrays or {})
    if kind == "empirical":
        if not arrays or "source_points" not in arrays:
            raise BrenierError("source: saved empirical source has no points")
        return Empirical(arrays["source_points"])
    return cls(**spec)


def make_source(source: Any, dim: int) -> SourceMeasure:
    """Accept a SourceMeasure or a name ('uniform'/'cube', 'ball', 'gaussian') for dimension d."""
    if isinstance(source, SourceMeasure):
        if source.dim != dim:
            raise BrenierError(f"source: has dimension {source.dim} but targets have dimension {dim}")
        return source
    names = {"uniform": UniformCube, "cube": UniformCube, "ball": UniformBall,
             "gaussian": Gaussian, "normal": Gaussian}
    if isinstance(source, str):
        key = source.lower()
        if key in ("uniform-qmc", "sobol"):
            return UniformCube(dim, qmc=True)
        if key in names:
            return names[key](dim)
        raise BrenierError(f"source: unknown name {source!r} (use {sorted(names)} or a measure)")
    raise BrenierError(f"source: expected a SourceMeasure or a name, got {type(source).__name__}")
