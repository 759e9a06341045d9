"""`brenier demo`: the main job on built-in data, written to a folder with pictures and JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console


def demo(out: Path = typer.Option(Path("out/demo"), "--out", help="output folder"),
         seed: int = typer.Option(0, help="random seed")) -> None:
    """The whole story on built-in data: OT cells and singular sets, Gu's figures, grid-25 against
    a GAN and a diffusion model, and AE-OT on the digits with its HTML report."""
    from ..report.demo import run_demo

    summary = run_demo(out, seed=seed)
    console.print(f"wrote {out}/ ({', '.join(sorted(summary['files']))})")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
