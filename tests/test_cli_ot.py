"""`brenier ot solve | info | map` end to end."""

import subprocess
import sys

import numpy as np

from brenier import SemiDiscreteOT


def brenier(*args):
    code = "from brenier.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)


def test_solve_info_map(tmp_path):
    y = np.random.default_rng(0).standard_normal((25, 3))
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "pot.safetensors"
    r = brenier("ot", "solve", tmp_path / "y.npy", "--out", out, "--source", "ball", "--seed", "1")
    assert r.returncode == 0, r.stderr
    assert "converged" in r.stderr
    model = SemiDiscreteOT.load(out)
    assert model.converged_ and model.targets_.shape == (25, 3)
    r = brenier("ot", "info", out)
    assert r.returncode == 0 and "targets N" in r.stderr and "25" in r.stderr
    x = np.random.default_rng(1).uniform(-0.3, 0.3, (40, 3))
    np.save(tmp_path / "x.npy", x)
    r = brenier("ot", "map", out, tmp_path / "x.npy", "--out", tmp_path / "t.npy")
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "t.npy"), model.transport(x))


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    np.save(tmp_path / "bad.npy", np.array([[0.0, np.nan], [1.0, 2.0]]))
    out = tmp_path / "pot.safetensors"
    r = brenier("ot", "solve", tmp_path / "bad.npy", "--out", out)
    assert r.returncode == 2
    assert "TARGETS: contains NaN" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
    r = brenier("ot", "info", tmp_path / "missing.safetensors")
    assert r.returncode == 2 and "file not found" in r.stderr
