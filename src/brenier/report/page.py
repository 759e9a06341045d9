"""The one-page HTML report of an AE-OT model: sample grids, the latent map with its singular pairs,
Gu's across-the-singular-set experiment, the metric table against the baselines, training curves.
Pictures are embedded as base64 PNG, so the page is a single self-contained file."""

from __future__ import annotations

import base64
import html
import io as _io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .. import io
from ..evaluation.evaluate import SAMPLES_FORMAT
from ..generators.aeot import AEOT
from ..ot.singular import SingularSet

METRIC_COLUMNS = (
    ("frechet", "Fréchet ↓", 3),
    ("class_kl", "class KL ↓", 4),
    ("mixture_rate_50", "mixture p<0.5 ↓", 3),
    ("mixture_rate_90", "mixture p<0.9 ↓", 3),
    ("precision", "precision ↑", 3),
    ("recall", "recall ↑", 3),
    ("coverage", "coverage ↑", 3),
    ("memorisation", "memorised ↓", 3),
    ("seconds", "seconds", 1),
)


def image_grid(images: np.ndarray, ncol: int | None = None, pad: int = 1, min_tile: int = 32) -> np.ndarray:
    """Tile images (n, C, H, W) in [0, 1] into one uint8 picture (rows, cols) or (rows, cols, 3),
    upscaled by an integer factor (nearest neighbour) so that each tile is at least `min_tile` px."""
    x = np.clip(np.asarray(images, np.float32), 0, 1)
    if x.ndim == 3:
        x = x[:, None]
    n, c, h, w = x.shape
    ncol = ncol or int(math.ceil(math.sqrt(n)))
    nrow = int(math.ceil(n / ncol))
    f = max(1, int(math.ceil(min_tile / max(h, w))))
    x = x.repeat(f, axis=2).repeat(f, axis=3)
    h, w = h * f, w * f
    canvas = np.ones((c, nrow * (h + pad) + pad, ncol * (w + pad) + pad), np.float32)
    for k in range(n):
        r, q = divmod(k, ncol)
        canvas[
            :, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w
        ] = x[k]
    out = np.round(canvas * 255).astype(np.uint8)
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def save_grid(path: str | os.PathLike, images: np.ndarray, ncol: int | None = None) -> None:
    """Write a PNG grid of images (atomic)."""
    import imageio.v3 as iio

    with io.atomic_path(path, suffix=".png") as tmp:
        iio.imwrite(tmp, image_grid(images, ncol), extension=".png")


def _png(fig_or_array: Any) -> str:
    """A matplotlib figure or a uint8 picture as a data: URI."""
    buf = _io.BytesIO()
    if isinstance(fig_or_array, np.ndarray):
        import imageio.v3 as iio

        buf.write(iio.imwrite("<bytes>", fig_or_array, extension=".png"))
    else:
        import matplotlib.pyplot as plt

        fig_or_array.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig_or_array)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def latent_map(model: AEOT, sing: SingularSet, max_segments: int = 400) -> Figure:
    """Codes projected on their first two principal axes, coloured by label, with the segments
    z_i–z_j of the singular pairs (largest facets first)."""
    import matplotlib.pyplot as plt

    z = model.codes_[model.target_index_]
    zc = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    p = zc @ vt[:2].T
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    labels = None if model.labels_ is None else np.asarray(model.labels_)[model.target_index_]
    pairs = sing.singular_pairs
    order = np.argsort(-sing.facet_measure[sing.singular], kind="stable")[:max_segments]
    for i, j in pairs[order]:
        ax.plot(p[[i, j], 0], p[[i, j], 1], color="0.6", lw=0.4, alpha=0.6, zorder=1)
    sc = ax.scatter(p[:, 0], p[:, 1], c=labels if labels is not None else "C0", cmap="tab10", s=6, zorder=2)
    if labels is not None:
        ax.legend(*sc.legend_elements(), fontsize=7, loc="best", title="label", title_fontsize=7)
    ax.set_title(
        f"latent codes (PCA of {z.shape[1]}-D); grey: {min(len(pairs), max_segments)} of "
        f"{len(pairs)} singular pairs",
        fontsize=9,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def training_curves(model: AEOT) -> Figure:
    """Autoencoder train/validation loss per epoch and the OT solver's χ² mass error per step."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    hist = getattr(model.autoencoder_, "history_", None) or {}
    for key in ("train", "val"):
        if hist.get(key):
            a.semilogy(hist[key], label=key)
    a.set_xlabel("epoch")
    a.set_ylabel("MSE")
    a.set_title("autoencoder", fontsize=9)
    a.legend(fontsize=8)
    chi2 = [r.get("chi2") for r in model.ot_.history_ if r.get("chi2") is not None]
    if chi2:
        b.semilogy(np.arange(1, len(chi2) + 1), np.maximum(chi2, 1e-12), marker="o")
        b.axhline(model.ot_.tol, color="0.5", ls="--", lw=0.8, label=f"tol {model.ot_.tol:g}")
        b.legend(fontsize=8)
    b.set_xlabel("solver step")
    b.set_ylabel("χ² mass error")
    b.set_title("semi-discrete OT (Brenier heights)", fontsize=9)
    fig.tight_layout()
    return fig


def metric_table(results: dict[str, dict]) -> str:
    """HTML table of the evaluation results, one row per method."""
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in METRIC_COLUMNS)
    rows = []
    for name, r in results.items():
        cells = []
        for key, _, digits in METRIC_COLUMNS:
            v = r.get(key)
            if isinstance(v, dict):
                v = v.get("near", v.get("rate"))
            cells.append(f"<td>{v:.{digits}f}</td>" if isinstance(v, (int, float)) else "<td>–</td>")
        rows.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>method</th>{head}</tr>{''.join(rows)}</table>"


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em}
td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
th:first-child{text-align:left}.grids{display:flex;flex-wrap:wrap;gap:14px}.grids figure{margin:0}
figcaption{font-size:.8em;text-align:center}img{image-rendering:pixelated}.note{font-size:.85em;color:#555}"""


def _analysis_table(a: dict) -> str:
    """The headline numbers of `brenier analyze` (analysis.json) as an HTML table."""
    d, t = a.get("dimension", {}), a.get("topology", {})
    rows = [("points / ambient dimension", f"{a.get('n_points')} / {a.get('ambient_dim')}"),
            ("intrinsic dimension", f"{d.get('dimension', float('nan')):.2f} ({d.get('method', '')})"),
            ("Betti numbers", t.get("betti")), ("Euler characteristic", t.get("euler_characteristic")),
            ("branches", len(t.get("components", []))), ("complex", t.get("backend"))]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def build_report(
    model_dir: str | os.PathLike, out: str | os.PathLike | None = None, *, n: int = 64, seed: int = 0,
    model: Any = None,
) -> Path:
    """Write `report.html` for a saved model directory (uses evaluation.json / samples if present);
    `model` is the AEOT already loaded from (or saved to) that directory, else it is read from it."""
    model_dir = Path(model_dir)
    model = AEOT.load(model_dir) if model is None else model
    out = Path(out) if out is not None else model_dir / "report.html"
    info = model.fit_info_
    sing = model.singular_set()
    parts = [
        f"<h1>brenier AE-OT report — {html.escape(model.data_name_)}</h1>",
        f"<p>{info['n_images']} images of shape {model.image_shape_}, latent dimension "
        f"{info['latent_dim']}, {info['n_targets']} OT targets. Autoencoder reconstruction MSE "
        f"{info['reconstruction_mse']:.4g} ({info['autoencoder_seconds']:.1f} s); OT solved in "
        f"{info['ot_steps']} steps, χ² = {info['ot_chi2']:.2e} ({info['ot_seconds']:.1f} s, "
        f"converged: {info['ot_converged']}). Singular set: {int(sing.singular.sum())} of "
        f"{len(sing.pairs)} adjacent pairs ("
        + ("pairs across the branches of the targets' neighbour graph" if sing.rule == "branches"
           else f"threshold {np.degrees(sing.threshold):.1f}° on the scale-aware angle")
        + f"), {int(sing.branches().max() + 1)} branches.</p>",
    ]

    evaluation = model_dir / "evaluation.json"
    grids = {
        "brenier": np.clip(
            model.autoencoder_.decode(model.sample_codes(n, seed=seed).astype(np.float32)), 0, 1
        )
    }
    if evaluation.exists():
        stored = json.loads(evaluation.read_text())
        order = [m for m in stored.get("methods", []) if m in stored["results"]]
        results = {m: stored["results"][m] for m in order + sorted(set(stored["results"]) - set(order))}
        reference = stored.get("reference")
        trained_on = (f"the held-out reference images ({html.escape(str(reference))}); Fréchet "
                      "distance, class KL and precision / recall / coverage compare with them"
                      if reference else "the same data")
        parts += [
            "<h2>Metrics against the baselines</h2>",
            metric_table(results),
            f"<p class='note'>Evaluated with a small CNN classifier trained on {trained_on} "
            "(no downloaded weights); mixture rate = share of samples whose top class probability is "
            "below 0.5 / 0.9; memorised = share nearer a training image than the data's own "
            "nearest-neighbour spacing.</p>",
        ]
        sample_file = model_dir / "evaluation_samples.safetensors"
        if sample_file.exists():
            arrays, _, _ = io.load_tensors(sample_file, SAMPLES_FORMAT, 1, "samples")
            grids = {k: arrays[k][:n] for k in [m for m in results if m in arrays]
                     + sorted(set(arrays) - set(results))}
    else:
        parts.append(
            "<p class='note'>No evaluation yet: run <code>brenier evaluate MODEL_DIR "
            "--baselines</code> to add the metric table and the baselines' samples.</p>"
        )

    parts.append("<h2>Samples</h2><div class='grids'>")
    for name, x in grids.items():
        parts.append(
            f"<figure><img src='{_png(image_grid(x[:n], 8))}'><figcaption>{html.escape(name)}"
            f"</figcaption></figure>"
        )
    parts.append("</div>")

    across, inside = model.singular_codes(32, seed=seed)
    parts.append("<h2>Across the singular set vs inside a branch (Gu's experiment)</h2><div class='grids'>")
    for name, z in (
        ("midpoints of singular pairs (what a continuous map produces)", across),
        ("midpoints of regular pairs", inside),
    ):
        if len(z):
            x = np.clip(model.autoencoder_.decode(z.astype(np.float32)), 0, 1)
            parts.append(
                f"<figure><img src='{_png(image_grid(x, 8))}'>"
                f"<figcaption>{html.escape(name)}</figcaption></figure>"
            )
    parts.append("</div>")
    parts += [
        "<h2>Latent map</h2>",
        f"<img src='{_png(latent_map(model, sing))}'>",
        "<h2>Training curves</h2>",
        f"<img src='{_png(training_curves(model))}'>",
    ]

    analysis = model_dir / "analysis" / "analysis.json"
    if analysis.exists():
        a = json.loads(analysis.read_text())
        parts += [
            "<h2>Global structure of the latent codes (brenier analyze)</h2>",
            _analysis_table(a),
        ]
        diagrams = analysis.parent / "diagrams.png"
        if diagrams.exists():
            uri = "data:image/png;base64," + base64.b64encode(diagrams.read_bytes()).decode()
            parts.append(f"<img src='{uri}' style='max-width:700px'>")

    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>brenier report</title>"
        f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>"
    )
    io.write_text(out, page)
    return out
