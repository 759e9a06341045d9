"""`brenier generate` and `brenier singular`: new samples and the singular set of a saved potential."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from .. import io
from ..ot.singular import THRESHOLD_RULES
from ..validation import BrenierError
from .common import console


def parse_threshold(value: str) -> float | str:
    if value in THRESHOLD_RULES:
        return value
    try:
        return float(value)
    except ValueError:
        raise BrenierError(
            f"--threshold: expected 'auto', 'topology', 'spectral' or an angle in radians, "
            f"got {value!r}") from None


def generate(
    potential: Path = typer.Argument(..., help="a potential written by `brenier ot solve`"),
    n: int = typer.Option(1000, "-n", "--n", help="number of samples"),
    out: Path = typer.Option(..., "--out", help="output .npy of shape (n, d)"),
    seed: int | None = typer.Option(None, help="seed of the source samples"),
    extension: str = typer.Option("pl", help="pl (singular-aware) | naive | none (plain map T)"),
    threshold: str = typer.Option(
        "auto", help="singular threshold: auto, topology (β₀ branches), spectral or θ* in radians"),
    n_samples: int | None = typer.Option(None, help="Monte-Carlo samples for cells and facets"),
    qmc: bool | None = typer.Option(
        None, "--qmc/--no-qmc", help="scrambled Sobol (--qmc) or i.i.d. (--no-qmc) source points; "
        "default: Sobol when the source is the uniform cube", show_default=False),
) -> None:
    """Generate new points with the (singular-aware) piecewise-linear extension of T = ∇u_h."""
    from ..ot import SemiDiscreteOT
    from ..ot.extension import generate as extend_generate
    from ..ot.extension import use_qmc

    model = SemiDiscreteOT.load(potential)
    if qmc and not use_qmc("auto", model.source_):
        raise BrenierError(f"--qmc: scrambled Sobol points need a uniform cube source, the potential's "
                           f"is {model.source_!r} (use --no-qmc or leave the flag out)")
    sobol = use_qmc("auto" if qmc is None else qmc, model.source_)
    x = extend_generate(model, n, seed=seed, threshold=parse_threshold(threshold), extension=extension,
                        n_samples=n_samples, qmc=sobol)
    io.save_npy(out, x)
    console.print(f"wrote {out} {x.shape} (extension={extension}, "
                  f"{'Sobol' if sobol else 'i.i.d.'} source points)")


def singular(
    potential: Path = typer.Argument(..., help="a potential written by `brenier ot solve`"),
    out: Path = typer.Option(..., "--out", help="output JSON with the pairs, angles and labels"),
    plot: Path | None = typer.Option(
        None, "--plot", help="also draw the cells and singular set (2-D) or the targets' projection (d ≠ 2)"),
    threshold: str = typer.Option(
        "auto", help="auto, topology (β₀ branches), spectral or θ* in radians (scale-aware angle)"),
    n_samples: int | None = typer.Option(None, help="Monte-Carlo samples for cells and facets"),
    seed: int = typer.Option(0, help="seed of those samples"),
) -> None:
    """Detect the singular set of u_h: adjacent cells whose targets are far apart."""
    from ..ot import SemiDiscreteOT
    from ..ot.singular import singular_set

    model = SemiDiscreteOT.load(potential)
    sing = singular_set(model, threshold=parse_threshold(threshold), n_samples=n_samples, seed=seed)
    io.write_json(out, sing.to_dict())
    console.print(f"{sing}: {int(np.sum(sing.singular))} singular of {len(sing.pairs)} adjacent "
                  f"pairs, {int(sing.branches().max() + 1)} branch(es); wrote {out}")
    if plot is not None:
        from ..report.plots import save_figure, singular_figure

        save_figure(singular_figure(model, sing), plot)
        console.print(f"wrote {plot}")


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("singular")(singular)
