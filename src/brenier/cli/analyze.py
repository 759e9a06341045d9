"""`brenier analyze DATA`: intrinsic dimension, Betti numbers, branches and Euler characteristic of
a data set or of its latent codes; writes a table, `analysis.json`, `diagrams.png`, `labels.npy`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from .. import io
from ..validation import check_points
from .common import console


def encode_latent(x: np.ndarray, model_dir: Path) -> np.ndarray:
    """Latent codes of x from a saved AE-OT model: ``AEOT.load(model_dir).encode(x)``."""
    from ..generators.aeot import AEOT

    return check_points(AEOT.load(model_dir).encode(x), "latent codes")


def _table(summary: dict[str, Any]) -> Table:
    d, t = summary["dimension"], summary["topology"]
    table = Table(title=f"manifold of {summary['source'] or 'DATA'}", show_header=False)
    spread = ", ".join(f"{k} {v:.2f}" for k, v in d["by_method"].items() if math.isfinite(v))
    rows = [
        ("points n / ambient D", f"{summary['n_points']} / {summary['ambient_dim']}"),
        ("intrinsic dimension", f"{d['dimension']:.2f} ({d['method']}; {spread})"),
        ("linear dimension (99 % var.)", d["linear_dimension"]),
        ("suggested latent size", d["latent_size"]),
        (f"Betti numbers (Z/{t['coeff']})", t["betti"]),
    ]
    rows += [(f"Betti numbers (Z/{p})", b) for p, b in t["betti_by_coeff"].items()
             if int(p) != t["coeff"]]
    sizes = ", ".join(str(c["size"]) for c in t["components"][:8])
    more = ", ..." if len(t["components"]) > 8 else ""
    rows += [("Euler characteristic", t["euler_characteristic"]),
             ("branches (sizes)", f"{len(t['components'])} ({sizes}{more})")]
    orient = {True: "yes", False: "no (Z/2 and Z/3 differ: 2-torsion)", None: "no evidence"}
    rows.append(("orientable", orient[t["orientable"]]))
    rows.append(("complex", f"{t['backend']} on {t['n_used']} points"))
    for k, v in rows:
        table.add_row(k, str(v))
    return table


def analyze(
    data: Annotated[Path, typer.Argument(help="samples: .npy/.npz/.csv of shape (n, D)")],
    latent: Annotated[Path | None, typer.Option(
        "--latent", help="AE-OT model folder: analyse the latent codes of DATA instead")] = None,
    out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("out/analyze"),
    max_dim: Annotated[int, typer.Option("--max-dim", help="highest homology dimension")] = 2,
    method: Annotated[str, typer.Option(
        help="dimension estimator: twonn | mle | lpca | danco | ...")] = "twonn",
    backend: Annotated[str, typer.Option(help="auto | alpha (2-D/3-D) | rips")] = "auto",
    landmarks: Annotated[int | None, typer.Option(
        "--landmarks", help="Rips: number of landmarks")] = None,
    max_points: Annotated[int | None, typer.Option(
        "--max-points", help="subsample beyond this many points")] = None,
    orientability: Annotated[bool, typer.Option(
        "--orientability/--no-orientability", help="also compute over Z/3 and compare")] = True,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Intrinsic dimension, Betti numbers, branches and Euler characteristic of DATA."""
    from ..report.analysis import write_analysis

    x = check_points(io.load_array(data, "DATA"), "DATA")
    if latent is not None:
        x = encode_latent(x, latent)
    summary = write_analysis(x, out, max_dim=max_dim, method=method, backend=backend,
                             n_landmarks=landmarks, max_points=max_points,
                             orientability=orientability, seed=seed, source=data.name,
                             status=console.status)
    console.print(_table(summary))
    for note in summary["dimension"]["notes"] + summary["topology"]["notes"]:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"wrote {out}/ ({', '.join(summary['files'])})")


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)
