"""Which χ² does the generator need? AE-OT samples against the OT solver's tolerance (issue 15).

One autoencoder is trained on `--n-train` Fashion-MNIST training images; the semi-discrete OT
problem from the cube to their codes is then solved once per tolerance τ (each solve from the same
start, stopping at χ² ≤ τ), its χ² is measured on 2²⁰ fresh samples, and `--n` images generated
through the singular-aware extension are scored with a classifier trained on the *test* split
(Fréchet distance, mixture rate, class KL and smallest class share, precision / recall /
coverage against the test images; near-copies against the training images). The autoencoder's
reconstructions of test images are the ceiling the OT part can reach.

    .venv/bin/python benchmarks/tolerance.py [--n-train 10000] [--tols 1,0.3,0.1,0.03,0.01,0.0025]
                                             [--n 10000] [--seed 0] [--data-dir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from brenier import AEOT, SemiDiscreteOT, UniformCube
from brenier.datasets import fashion_mnist
from brenier.datasets.images import ImageData
from brenier.evaluation.classifier import load_or_train_classifier
from brenier.evaluation.image_metrics import evaluate_samples, image_memorisation

FIELDS = (("chi2_fresh", "χ² fresh", ".2e"), ("steps", "steps", "d"), ("ot_seconds", "OT s", ".0f"),
          ("frechet", "Fréchet", ".2f"), ("mixture_rate_50", "mix p<0.5", ".3f"),
          ("class_kl", "class KL", ".4f"), ("min_class", "min class", ".3f"),
          ("precision", "precision", ".3f"), ("recall", "recall", ".3f"),
          ("coverage", "coverage", ".3f"), ("near_copies", "near-copies", ".3f"))


def score(images: np.ndarray, test: ImageData, train: np.ndarray, clf, seed: int) -> dict:
    """Test-split metrics of `images`, near-copies against the training images."""
    out = evaluate_samples(images, test, classifier=clf, seed=seed)
    out["min_class"] = float(min(out["class_histogram"]))
    out["near_copies"] = image_memorisation(images, train, seed=seed)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=10000)
    p.add_argument("--tols", default="1,0.3,0.1,0.03,0.01,0.0025")
    p.add_argument("--n", type=int, default=10000, help="generated images per tolerance")
    p.add_argument("--epochs", type=int, default=None, help="autoencoder epochs (default: AEOT's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    torch.set_num_threads(1)
    tols = sorted((float(t) for t in a.tols.split(",")), reverse=True)
    train = fashion_mnist("train", data_dir=a.data_dir)
    test = fashion_mnist("test", data_dir=a.data_dir)
    pick = np.sort(np.random.default_rng(a.seed).choice(len(train.images), a.n_train, replace=False))
    x_train = train.images[pick]
    t0 = time.perf_counter()
    extra = {} if a.epochs is None else {"epochs": a.epochs}
    model = AEOT("auto", seed=a.seed, tol=tols[0], **extra).fit(
        ImageData(x_train, train.labels[pick], "fashion-mnist", (0.0, 1.0), None))
    print(f"autoencoder + first solve: {time.perf_counter() - t0:.0f} s, latent d = "
          f"{model.codes_.shape[1]}, reconstruction MSE {model.fit_info_['reconstruction_mse']:.4f}",
          flush=True)
    clf = load_or_train_classifier(test, seed=0)
    rows = {}
    recon = np.clip(model.autoencoder_.decode(model.autoencoder_.encode(test.images[: a.n])), 0, 1)
    rows["reconstructions"] = score(recon, test, x_train, clf, a.seed)
    targets, weights = model.ot_.targets_, model.ot_.weights_
    d = targets.shape[1]
    for tol in tols:
        t = time.perf_counter()
        ot = SemiDiscreteOT(UniformCube(d), tol=tol, seed=a.seed, start="auto").fit(targets, weights)
        seconds = time.perf_counter() - t
        model.ot_ = ot
        z = model.sample_codes(a.n, seed=a.seed + 1)
        images = np.clip(model.autoencoder_.decode(z.astype(np.float32)), 0, 1)
        r = score(images, test, x_train, clf, a.seed)
        r.update(chi2_fresh=ot.mass_error(n_samples=1 << 20, seed=a.seed + 7)["chi2"],
                 steps=int(ot.n_iter_), ot_seconds=seconds)
        rows[f"τ = {tol:g}"] = r
        print(f"τ = {tol:g}: {seconds:.0f} s, {ot.n_iter_} steps, χ² fresh {r['chi2_fresh']:.2e}, "
              f"Fréchet {r['frechet']:.2f}", flush=True)
    print(f"\nN = {len(targets)} codes in {d}-D, {a.n} samples each, seed {a.seed}\n")
    print("| | " + " | ".join(label for _, label, _ in FIELDS) + " |")
    print("|---" * (len(FIELDS) + 1) + "|")
    for name, r in rows.items():
        cells = [format(r[k], f) if k in r else "" for k, _, f in FIELDS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
