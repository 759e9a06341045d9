"""`brenier generate` and `brenier singular` on a saved potential."""

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from brenier import SemiDiscreteOT
from brenier.cli import app, main
from brenier.validation import BrenierError


@pytest.fixture(scope="module")
def potential(tmp_path_factory):
    rng = np.random.default_rng(0)
    y = np.r_[rng.normal(size=(50, 2)) * 0.05 + [-1, 0], rng.normal(size=(50, 2)) * 0.05 + [1, 0]]
    path = tmp_path_factory.mktemp("pot") / "two.safetensors"
    SemiDiscreteOT("uniform", seed=0).fit(y).save(path)
    return path


def test_generate_writes_samples(potential, tmp_path):
    out = tmp_path / "samples.npy"
    result = CliRunner().invoke(app, ["generate", str(potential), "-n", "300", "--out", str(out),
                                      "--seed", "1", "--n-samples", "50000"])
    assert result.exit_code == 0, result.output
    x = np.load(out)
    assert x.shape == (300, 2) and np.abs(x[:, 0]).min() > 0.7
    plain = tmp_path / "plain.npy"
    result = CliRunner().invoke(app, ["generate", str(potential), "-n", "50", "--out", str(plain),
                                      "--extension", "none"])
    assert result.exit_code == 0, result.output
    y = SemiDiscreteOT.load(potential).targets_
    assert (np.abs(np.load(plain)[:, None] - y[None]).sum(-1).min(1) == 0).all()


def test_singular_writes_json_and_plot(potential, tmp_path):
    out, png = tmp_path / "s.json", tmp_path / "s.png"
    result = CliRunner().invoke(app, ["singular", str(potential), "--out", str(out), "--plot", str(png),
                                      "--n-samples", "50000"])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["n_branches"] == 2 and summary["n_singular"] > 0
    assert len(summary["facets"]["pairs"]) == summary["n_pairs"]
    assert png.stat().st_size > 1000
    manual = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["singular", str(potential), "--out", str(manual),
                                      "--threshold", "3.14159", "--n-samples", "20000"])
    assert result.exit_code == 0 and json.loads(manual.read_text())["n_singular"] == 0


def test_user_errors_are_one_line(potential, tmp_path, monkeypatch, capsys):
    result = CliRunner().invoke(app, ["generate", str(potential), "--out", str(tmp_path / "x.npy"),
                                      "--extension", "wiggly"])
    assert isinstance(result.exception, BrenierError) and "extension" in str(result.exception)
    result = CliRunner().invoke(app, ["singular", str(tmp_path / "missing.safetensors"),
                                      "--out", str(tmp_path / "s.json")])
    assert isinstance(result.exception, BrenierError)
    monkeypatch.setattr(sys, "argv", ["brenier", "singular", str(potential), "--out",
                                      str(tmp_path / "s.json"), "--threshold", "often"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2 and "threshold" in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists() and not (tmp_path / "s.json").exists()


def test_generate_naive_fills_the_gap_and_pl_makes_new_points(potential, tmp_path):
    paths = {ext: tmp_path / f"{ext}.npy" for ext in ("pl", "naive")}
    for ext, path in paths.items():
        result = CliRunner().invoke(app, ["generate", str(potential), "-n", "2000", "--out", str(path),
                                          "--seed", "3", "--extension", ext, "--n-samples", "50000"])
        assert result.exit_code == 0, result.output
    pl, naive = np.load(paths["pl"]), np.load(paths["naive"])
    assert np.abs(pl[:, 0]).min() > 0.7  # never in the gap between the clusters at x = ±1
    assert (np.abs(naive[:, 0]) < 0.5).sum() >= 5  # the naive extension interpolates across it
    y = SemiDiscreteOT.load(potential).targets_
    assert np.abs(pl[:, None] - y[None]).sum(-1).min(1).min() > 0  # new points, not copies


def test_bad_sizes_are_refused_and_3d_plots_are_projections(potential, tmp_path):
    out = tmp_path / "x.npy"
    result = CliRunner().invoke(app, ["generate", str(potential), "-n", "0", "--out", str(out)])
    assert isinstance(result.exception, BrenierError) and str(result.exception).startswith("n:")
    assert not out.exists()
    y3 = np.random.default_rng(1).normal(size=(40, 3))
    pot3 = tmp_path / "three.safetensors"
    SemiDiscreteOT("uniform", seed=0).fit(y3).save(pot3)
    js = tmp_path / "s3.json"
    png = tmp_path / "s3.png"
    result = CliRunner().invoke(app, ["singular", str(pot3), "--out", str(js), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert js.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the targets' projection
    result = CliRunner().invoke(app, ["singular", str(pot3), "--out", str(js), "--n-samples", "20000"])
    assert result.exit_code == 0, result.output
    assert json.loads(js.read_text())["dim"] == 3


def test_generate_qmc_flag(potential, tmp_path):
    def run(*flags, pot=potential, name="x"):
        out = tmp_path / f"{name}.npy"
        result = CliRunner().invoke(app, ["generate", str(pot), "-n", "200", "--out", str(out),
                                          "--seed", "4", "--n-samples", "50000", *flags])
        return result, out

    outputs = {}
    for name, flags in (("auto", ()), ("qmc", ("--qmc",)), ("iid", ("--no-qmc",)),
                        ("plain", ("--extension", "none", "--no-qmc"))):
        result, out = run(*flags, name=name)
        assert result.exit_code == 0, result.output
        outputs[name] = np.load(out)
    assert "Sobol" in run(name="again")[0].output  # the uniform cube source: Sobol by default
    np.testing.assert_array_equal(outputs["auto"], outputs["qmc"])
    assert not np.allclose(outputs["auto"], outputs["iid"])
    model = SemiDiscreteOT.load(potential)
    np.testing.assert_array_equal(outputs["iid"], model.generate(200, seed=4, n_samples=50_000, qmc=False))
    np.testing.assert_array_equal(outputs["plain"], model.transport(model.source_.sample(200, seed=4)))
    gauss = tmp_path / "gauss.safetensors"
    SemiDiscreteOT("gaussian", seed=0, max_iter=30).fit(model.targets_[::4]).save(gauss)
    result, out = run("--qmc", pot=gauss, name="g")
    assert isinstance(result.exception, BrenierError) and "--qmc" in str(result.exception)
    assert not out.exists()
    result, out = run(pot=gauss, name="g")
    assert result.exit_code == 0 and "i.i.d." in result.output
