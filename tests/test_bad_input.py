"""Bad input gets a clear BrenierError naming the argument; no partial output file."""

import pickle

import numpy as np
import pytest

from brenier import BrenierError, DiscreteMeasure, SemiDiscreteOT, UniformCube, io

Y = np.random.default_rng(0).standard_normal((10, 2))


@pytest.mark.parametrize("targets, weights, match", [
    (np.array([[0.0, np.nan], [1.0, 1.0]]), None, "targets: contains NaN"),
    (np.array([[0.0, np.inf], [1.0, 1.0]]), None, "targets: contains inf"),
    (np.zeros((0, 2)), None, "targets: expected at least 1 point"),
    (np.arange(5.0), None, r"targets: expected a 2-D array .* \(n, 1\)"),
    (Y, -np.ones(10), "weights: must be >= 0"),
    (Y, np.zeros(10), "weights: must have a positive sum"),
    (Y, np.r_[np.nan, np.ones(9)], "weights: contains NaN"),
    (Y, np.ones(9), r"weights: expected shape \(10,\)"),
    (np.vstack([Y, Y[:1]]), None, "targets: duplicate points at rows"),
])
def test_bad_targets_and_weights(targets, weights, match):
    with pytest.raises(BrenierError, match=match):
        SemiDiscreteOT(UniformCube(2)).fit(targets, weights)


def test_dimension_mismatch_names_the_source():
    with pytest.raises(BrenierError, match="source: has dimension 3 but targets have dimension 2"):
        SemiDiscreteOT(UniformCube(3)).fit(Y)


@pytest.mark.parametrize("kwargs, match", [
    ({"tol": -1}, "tol"), ({"max_iter": 0}, "max_iter"), ({"batch_size": 2.5}, "batch_size"),
    ({"backend": "gpu"}, "backend"), ({"optimizer": "sgd"}, "optimizer"), ({"seed": "x"}, "seed"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(BrenierError, match=match):
        SemiDiscreteOT("uniform", **kwargs).fit(Y)


def test_query_points_are_checked():
    model = SemiDiscreteOT("uniform", max_iter=2).fit(Y)
    with pytest.raises(BrenierError, match="x: expected dimension d=2, got d=3"):
        model.assign(np.zeros((4, 3)))
    with pytest.raises(BrenierError, match="x: contains NaN"):
        model.transport(np.array([[np.nan, 0.0]]))
    with pytest.raises(BrenierError, match="k: expected at most 10"):
        model.top_k(np.zeros((1, 2)), 11)
    with pytest.raises(BrenierError, match="not fitted"):
        SemiDiscreteOT("uniform").assign(np.zeros((1, 2)))


def test_discrete_measure_normalises_weights():
    nu = DiscreteMeasure(Y, np.arange(1.0, 11.0))
    assert nu.weights.sum() == pytest.approx(1.0) and nu.n == 10 and nu.dim == 2


def test_missing_corrupt_foreign_and_pickled_files(tmp_path):
    with pytest.raises(BrenierError, match="path: file not found"):
        SemiDiscreteOT.load(tmp_path / "nope.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(BrenierError, match="not a readable safetensors file"):
        SemiDiscreteOT.load(corrupt)
    pick = tmp_path / "model.safetensors"
    pick.write_bytes(pickle.dumps({"heights": [1, 2]}))
    with pytest.raises(BrenierError, match="pickle"):
        SemiDiscreteOT.load(pick)
    foreign = tmp_path / "foreign.safetensors"
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, np.float32)}, str(foreign))
    with pytest.raises(BrenierError, match="is not a brenier.SemiDiscreteOT file"):
        SemiDiscreteOT.load(foreign)
    npy_pickle = tmp_path / "obj.npy"
    np.save(npy_pickle, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BrenierError, match="pickle"):
        io.load_array(npy_pickle, "TARGETS")


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "future.safetensors"
    io.save_tensors(path, {"h": np.zeros(2)}, "brenier.SemiDiscreteOT", 99, {})
    with pytest.raises(BrenierError, match="newer brenier"):
        SemiDiscreteOT.load(path)


def test_failed_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.npy"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []
