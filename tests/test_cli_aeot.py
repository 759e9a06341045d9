"""`brenier fit | sample | evaluate | report` end to end on the digits (small budgets)."""

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from brenier.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("aeot") / "model"
    res = runner.invoke(app, ["fit", "digits", "--out", str(out), "--latent-dim", "2", "--epochs", "30",
                              "--seed", "0"])
    assert res.exit_code == 0, res.output
    return out


def test_fit_writes_a_model_directory(model_dir):
    manifest = json.loads((model_dir / "aeot.json").read_text())
    assert manifest["format"] == "brenier.AEOT"
    assert manifest["fit_info"]["n_images"] == 1797
    assert manifest["fit_info"]["latent_dim"] == 2


def test_sample_png_and_npy(model_dir, tmp_path):
    import imageio.v3 as iio

    res = runner.invoke(app, ["sample", str(model_dir), "-n", "16", "--out", str(tmp_path / "g.png"),
                              "--seed", "1"])
    assert res.exit_code == 0, res.output
    grid = iio.imread(tmp_path / "g.png")
    assert grid.ndim == 2 and grid.shape[0] >= 4 * 32  # 4 × 4 tiles of ≥ 32 px
    res = runner.invoke(app, ["sample", str(model_dir), "-n", "5", "--out", str(tmp_path / "x.npy"),
                              "--seed", "1"])
    assert res.exit_code == 0, res.output
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (5, 1, 8, 8) and 0.0 <= x.min() and x.max() <= 1.0


def test_evaluate_and_report(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BRENIER_CACHE", str(tmp_path / "cache"))
    res = runner.invoke(app, ["evaluate", str(model_dir), "-n", "300", "--baselines", "--budget", "0.02"])
    assert res.exit_code == 0, res.output
    results = json.loads((model_dir / "evaluation.json").read_text())["results"]
    for name in ("brenier", "brenier (naive)", "latent DDPM", "pixel DDPM", "VAE", "AE + Gaussian"):
        r = results[name]
        assert 0.0 <= r["mixture_rate_50"] <= r["mixture_rate_90"] <= 1.0
        assert r["frechet"] >= 0 and np.isfinite(r["frechet"])
    # the reference row: training images are their own copies and are never blends
    assert results["data (training images)"]["memorisation"] == 1.0
    assert results["data (training images)"]["mixture_rate_50"] < 0.02
    res = runner.invoke(app, ["report", str(model_dir)])
    assert res.exit_code == 0, res.output
    page = (model_dir / "report.html").read_text()
    assert page.count("<img") >= 6 and "Metrics against the baselines" in page and "latent DDPM" in page
    assert "Betti numbers" in page


@pytest.mark.parametrize("args, message", [
    (["fit", "no_such_data", "--out", "OUT"], "neither a built-in data set"),
    (["fit", "digits", "--out", "OUT", "--latent-dim", "many"], "--latent-dim"),
    (["sample", "NODIR", "--out", "x.png"], "not a model directory"),
    (["sample", "MODEL", "--out", "x.gif"], "--out"),
])
def test_bad_input_is_one_line(args, message, model_dir, tmp_path, capsys):
    from brenier.cli import main

    paths = {"MODEL": str(model_dir), "OUT": str(tmp_path / "OUT"), "NODIR": str(tmp_path / "NODIR")}
    args = [paths.get(a, a) for a in args]

    old = sys.argv
    sys.argv = ["brenier", *args]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = old
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "OUT").exists()


def test_analyze_latent_codes_of_a_model(model_dir, tmp_path):
    from brenier.datasets import digits

    flat = digits().images[:300].reshape(300, -1)
    np.save(tmp_path / "digits.npy", flat)
    res = runner.invoke(app, ["analyze", str(tmp_path / "digits.npy"), "--latent", str(model_dir),
                              "--out", str(tmp_path / "an"), "--max-dim", "1"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "an" / "analysis.json").read_text())
    assert summary["ambient_dim"] == 2 and summary["n_points"] == 300  # the 2-D latent codes
