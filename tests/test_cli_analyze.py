"""`brenier analyze`: table, JSON, diagram picture and the --latent hook."""

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from brenier import BrenierError
from brenier.cli import app, main
from brenier.generators import aeot as aeot_module


def two_circles(n=150, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, (2, n))
    a = np.c_[np.cos(t[0]), np.sin(t[0])]
    b = np.c_[np.cos(t[1]) + 4, np.sin(t[1])]
    return np.r_[a, b] + 0.003 * rng.standard_normal((2 * n, 2))


def test_analyze_npy_writes_json_png_labels(tmp_path):
    np.save(tmp_path / "x.npy", two_circles())
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "x.npy"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["topology"]["betti"] == [2, 2, 0]
    assert summary["topology"]["euler_characteristic"] == 0
    assert [c["size"] for c in summary["topology"]["components"]] == [150, 150]
    assert abs(summary["dimension"]["dimension"] - 1) < 0.3
    labels = np.load(out / "labels.npy")
    assert labels.shape == (300,) and len(set(labels[:150])) == 1 and labels[0] != labels[-1]
    assert (out / "diagrams.png").read_bytes()[:4] == b"\x89PNG"


def test_analyze_csv_in_higher_dimension(tmp_path):
    rng = np.random.default_rng(1)
    x = np.c_[two_circles(120, 1), 0.01 * rng.standard_normal((240, 3))]
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    out = tmp_path / "o"
    args = ["analyze", str(tmp_path / "x.csv"), "--out", str(out), "--max-dim", "1",
            "--no-orientability", "--landmarks", "200"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["topology"]["backend"] == "rips"
    assert summary["topology"]["betti"] == [2, 2]
    assert list(summary["topology"]["betti_by_coeff"]) == ["2"]


def test_latent_without_a_model_is_a_clear_error(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", two_circles(30))
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "x.npy"), "--latent",
                                      str(tmp_path / "model"), "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, BrenierError)
    assert "not a model directory" in str(result.exception)
    monkeypatch.setattr(sys, "argv", ["brenier", "analyze", str(tmp_path / "x.npy"), "--latent",
                                      str(tmp_path / "model")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2


def test_latent_hook_encodes_with_the_model(tmp_path, monkeypatch):
    class FakeAEOT:  # stands in for the AE-OT model: encode lifts 2-D data to a 3-D latent space
        seen = None

        @classmethod
        def load(cls, path):
            cls.seen = path
            return cls()

        def encode(self, x):
            return np.c_[x, np.zeros(len(x))] * 2.0

    monkeypatch.setattr(aeot_module, "AEOT", FakeAEOT)
    np.save(tmp_path / "x.npy", two_circles(100))
    out = tmp_path / "o"
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "x.npy"), "--latent",
                                      str(tmp_path / "model"), "--out", str(out), "--max-dim", "1"])
    assert result.exit_code == 0, result.output
    assert FakeAEOT.seen == tmp_path / "model"
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["ambient_dim"] == 3 and summary["topology"]["betti"] == [2, 2]


def test_missing_file_is_a_user_error(tmp_path):
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "nope.npy")])
    assert isinstance(result.exception, BrenierError) and "DATA" in str(result.exception)
