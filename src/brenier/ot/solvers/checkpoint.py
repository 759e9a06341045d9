"""Checkpoints of the Monte-Carlo solver: its whole state (heights h, Hessian estimate, step
control, random streams, history) in one safetensors file + JSON metadata, so an interrupted
solve resumes to the same result."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ... import io
from ...validation import BrenierError
from ..result import as_record
from .monte_carlo import SolverState

CHECKPOINT_FORMAT = "brenier.SemiDiscreteOT.checkpoint"
FORMAT_VERSION = 1


def write_checkpoint(path: str | os.PathLike, st: SolverState, fingerprint: str) -> None:
    """Write the solver state atomically."""
    arrays = {"h": st.h}
    if st.prev_h is not None:
        arrays["prev_h"] = st.prev_h
    if st.w is not None:
        coo = st.w.tocoo()
        arrays |= {"W_row": coo.row.astype(np.int64), "W_col": coo.col.astype(np.int64), "W_val": coo.data}
    for name in ("adam_m", "adam_v", "h_avg"):
        if getattr(st, name) is not None:
            arrays[name] = getattr(st, name)
    meta = {"fingerprint": fingerprint, "step": st.step, "batch": st.batch,
            "alpha": st.alpha, "damping": st.damping,
            "prev_chi2": None if not np.isfinite(st.prev_chi2) else st.prev_chi2,
            "converged": st.converged, "history": st.history, "stream": st.stream,
            "eval_stream": st.eval_stream, "elapsed": st.elapsed, "prev_sd": st.prev_sd,
            "contraction": None if not np.isfinite(st.contraction) else st.contraction}
    io.save_tensors(path, arrays, CHECKPOINT_FORMAT, FORMAT_VERSION, meta)


def read_checkpoint(path: str | os.PathLike, fingerprint: str, n: int) -> SolverState | None:
    """The saved state, or None when there is no file; an error when it belongs to another
    problem or other settings (`fingerprint`)."""
    path = Path(path)
    if not path.exists():
        return None
    arrays, meta, _ = io.load_tensors(path, CHECKPOINT_FORMAT, FORMAT_VERSION, "checkpoint")
    if meta.get("fingerprint") != fingerprint:
        raise BrenierError(
            f"checkpoint: {path} was written for a different problem or settings; "
            "delete it or pass another path"
        )
    w = None
    if "W_val" in arrays:
        w = sp.coo_matrix((arrays["W_val"], (arrays["W_row"], arrays["W_col"])), shape=(n, n)).tocsr()
    prev = meta["prev_chi2"]
    return SolverState(
        h=arrays["h"], step=meta["step"], batch=meta["batch"], alpha=meta["alpha"],
        damping=float(meta.get("damping", 0.0)),
        prev_chi2=np.inf if prev is None else prev, prev_h=arrays.get("prev_h"), w=w,
        adam_m=arrays.get("adam_m"), adam_v=arrays.get("adam_v"), h_avg=arrays.get("h_avg"),
        converged=meta["converged"], history=[as_record(r) for r in meta["history"]],
        stream=meta["stream"], eval_stream=meta["eval_stream"], elapsed=meta["elapsed"],
        prev_sd=float(meta.get("prev_sd", 0.0)),
        contraction=np.nan if meta.get("contraction") is None else float(meta["contraction"]))
