"""`brenier morph a.png b.png --frames 16 --out morph.gif`: Monge–Ampère transport between images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from ..validation import BrenierError
from .common import console, progress_bar


def load_gray(path: Path, size: int | None, name: str) -> np.ndarray:
    """Read an image file as a float grayscale array, shrunk (box filter) to at most `size` px."""
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise BrenierError(f"{name}: file not found: {path}")
    try:
        with Image.open(path) as im:
            im = im.convert("L")
            if size is not None and max(im.size) > size:
                scale = size / max(im.size)
                new = (max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale)))
                im = im.resize(new, Image.Resampling.BOX)
            return np.asarray(im, dtype=np.float64)
    except (UnidentifiedImageError, OSError) as exc:
        raise BrenierError(f"{name}: {path} is not a readable image ({exc})") from None


def morph(
    image_a: Path = typer.Argument(..., help="source image (its gray levels are the density μ)"),
    image_b: Path = typer.Argument(..., help="target image (Diracs at its pixel centres)"),
    out: Path = typer.Option(Path("morph.gif"), "--out", help="output animated GIF"),
    frames: int = typer.Option(16, help="frames of the displacement interpolation, t = 0 … 1"),
    size: int = typer.Option(64, help="shrink both images to at most this many pixels per side"),
    max_points: int = typer.Option(20000, help="at most this many target Diracs"),
    fps: float = typer.Option(8.0, help="frames per second of the GIF"),
    boomerang: bool = typer.Option(True, help="play forward then backward"),
    tol: float = typer.Option(1e-9, help="stop at this max relative cell-mass error"),
    invert: bool = typer.Option(False, help="use 255 − gray (dark shapes on light paper)"),
) -> None:
    """Solve OT between two grayscale images (exact power-diagram Newton) and write a GIF."""
    from ..morph import transport_images

    a = load_gray(image_a, size, "IMAGE_A")
    b = load_gray(image_b, size, "IMAGE_B")
    if invert:
        a, b = 255.0 - a, 255.0 - b
    with progress_bar("newton", total=None) as advance:
        result = transport_images(a, b, frames=frames, max_points=max_points, tol=tol,
                                  callback=lambda r: advance(
                                      f"step {r['step']}  max_rel {r['max_rel']:.2e}"))
    result.save_gif(out, fps=fps, boomerang=boomerang)
    status = "converged" if result.converged else "NOT converged"
    last = result.history[-1]["max_rel"] if result.history else 0.0
    console.print(f"{status} in {result.n_iter} Newton steps (max relative mass error {last:.2e}, "
                  f"{len(result.targets)} targets); wrote {out} ({len(result.frames)} frames)")


def register(app: typer.Typer) -> None:
    app.command("morph")(morph)
