"""`brenier ot solve | info | map`: the semi-discrete OT engine from the shell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from .. import io
from ..measures import Empirical, Gaussian, UniformBall, UniformCube
from ..ot import SemiDiscreteOT
from ..validation import BrenierError, check_points
from .common import console, progress_bar

ot_app = typer.Typer(help="Semi-discrete optimal transport (Brenier potentials).", no_args_is_help=True)

SOURCES = {"uniform": UniformCube, "cube": UniformCube, "ball": UniformBall, "gaussian": Gaussian}


def _source(name: str, dim: int, qmc: bool):
    if name in SOURCES:
        return UniformCube(dim, qmc=True) if (name in ("uniform", "cube") and qmc) else SOURCES[name](dim)
    path = Path(name)
    if path.suffix.lower() in {".npy", ".npz", ".csv", ".txt"}:
        return Empirical(check_points(io.load_array(path, "--source"), "--source", dim=dim))
    raise BrenierError(f"--source: expected one of {sorted(SOURCES)} or a .npy file, got {name!r}")


@ot_app.command("solve")
def solve(
    targets: Path = typer.Argument(..., help="target points y_i: .npy/.npz/.csv of shape (N, d)"),
    out: Path = typer.Option(..., "--out", help="output potential (.safetensors)"),
    source: str = typer.Option("uniform", help="uniform | ball | gaussian | path to source samples"),
    weights: Path | None = typer.Option(None, help="target weights ν_i (.npy, shape (N,))"),
    tol: float = typer.Option(2.5e-3, help="stop when the χ² cell-mass error is ≤ tol"),
    max_iter: int = typer.Option(100, help="maximum optimisation steps"),
    batch_size: int | None = typer.Option(None, help="first batch of source samples"),
    seed: int = typer.Option(0, help="random seed"),
    qmc: bool = typer.Option(False, help="scrambled Sobol samples for the uniform cube"),
    backend: str = typer.Option("auto", help="auto | faiss | torch"),
    device: str = typer.Option("cpu", help="cpu | cuda"),
    checkpoint: Path | None = typer.Option(None, help="checkpoint file; resumes when present"),
    method: str = typer.Option("auto", help="auto | newton (exact, 2-D/3-D) | monte-carlo"),
):
    """Solve for the Brenier heights h from a source measure to the target points (the exact
    power-diagram Newton solver in 2-D/3-D with a box, polygon or disc source, else Monte Carlo)."""
    y = check_points(io.load_array(targets, "TARGETS"), "TARGETS")
    w = io.load_array(weights, "--weights") if weights is not None else None
    src = _source(source, y.shape[1], qmc)
    model = SemiDiscreteOT(src, tol=tol, max_iter=max_iter, batch_size=batch_size, seed=seed,
                           backend=backend, device=device, checkpoint=checkpoint, method=method)
    with progress_bar("solving", total=max_iter) as advance:
        model.fit(y, w, callback=lambda r: advance(
            f"step {r['step']}  E={r['energy']:.6g}  chi2={r['chi2']:.2e}  max_rel={r['max_rel']:.3f}"))
    model.save(out)
    status = "converged" if model.converged_ else "NOT converged (raise --max-iter or --tol)"
    console.print(f"{status} after {model.n_iter_} {model.method_} steps; wrote {out}")


@ot_app.command("info")
def info(path: Path = typer.Argument(..., help="a potential written by `brenier ot solve`")):
    """Describe a saved potential."""
    model = SemiDiscreteOT.load(path)
    last = model.result_.last
    table = Table(title=str(path), show_header=False)
    rows = [("targets N", len(model.targets_)), ("dimension d", model.targets_.shape[1]),
            ("source", repr(model.source_)), ("solver", model.method_), ("steps", model.n_iter_),
            ("converged", model.converged_), ("last chi2", f"{last['chi2']:.3e}"),
            ("last max_rel", f"{last['max_rel']:.3g}"), ("energy E(h)", f"{last['energy']:.8g}"),
            ("heights range", f"[{model.heights_.min():.4g}, {model.heights_.max():.4g}]")]
    for k, v in rows:
        table.add_row(k, str(v))
    console.print(table)


@ot_app.command("map")
def map_points(
    path: Path = typer.Argument(..., help="a saved potential"),
    points: Path = typer.Argument(..., help="source points x (.npy, shape (M, d))"),
    out: Path = typer.Option(..., "--out", help="output .npy of T(x), shape (M, d)"),
    indices: bool = typer.Option(False, help="write cell indices (M,) instead of T(x)"),
):
    """Apply the transport map T = ∇u_h to points."""
    model = SemiDiscreteOT.load(path)
    x = check_points(io.load_array(points, "POINTS"), "POINTS", dim=model.targets_.shape[1])
    result = model.assign(x) if indices else model.transport(x)
    io.save_npy(out, np.asarray(result))
    console.print(f"wrote {out} {tuple(np.shape(result))}")


def register(app: typer.Typer) -> None:
    app.add_typer(ot_app, name="ot")
