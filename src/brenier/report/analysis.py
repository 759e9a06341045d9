"""The written analysis of a point cloud (data or latent codes): `analysis.json`, `diagrams.png`
and `labels.npy`, as `brenier analyze` and the HTML report use them."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from .. import io
from ..analysis.dimension import intrinsic_dimension
from ..analysis.topology import plot_diagrams, topology
from ..validation import check_points


def _quiet(_message: str) -> AbstractContextManager:
    return contextlib.nullcontext()


def write_analysis(x: np.ndarray, out: Path, *, max_dim: int = 2, method: str = "twonn",
                   backend: str = "auto", n_landmarks: int | None = None,
                   max_points: int | None = None, orientability: bool = True,
                   seed: int = 0, source: str = "",
                   status: Callable[[str], AbstractContextManager] = _quiet) -> dict[str, Any]:
    """Analyse points x (n, D) and write `analysis.json`, `diagrams.png` and `labels.npy` to `out`.

    `status(message)` is entered around each long stage (e.g. a console spinner). Returns the
    summary written to `analysis.json` (also usable by an HTML report).
    """
    x = check_points(x, "DATA")
    with warnings.catch_warnings():  # their messages are in the notes, printed once below
        warnings.simplefilter("ignore", UserWarning)
        with status("estimating the intrinsic dimension"):
            dim = intrinsic_dimension(x, method=method, seed=seed)
        with status(f"persistent homology up to H{max_dim}"):
            topo = topology(x, max_dim=max_dim, backend=backend, n_landmarks=n_landmarks,
                            max_points=max_points, orientability=orientability, seed=seed)
    summary = {"source": source, "n_points": int(x.shape[0]), "ambient_dim": int(x.shape[1]),
               "dimension": dim.to_dict(), "topology": topo.to_dict(),
               "files": ["analysis.json", "diagrams.png", "labels.npy"]}
    out = Path(out)
    io.write_json(out / "analysis.json", summary)
    io.save_npy(out / "labels.npy", topo.labels)
    plot_diagrams(topo, out / "diagrams.png", title=source or None)
    return summary
