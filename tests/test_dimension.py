"""Intrinsic dimension on manifolds whose dimension is known."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_swiss_roll

from brenier import BrenierError
from brenier.manifold import intrinsic_dimension


def test_swiss_roll_is_two_dimensional():
    x, _ = make_swiss_roll(1500, random_state=0)
    est = intrinsic_dimension(x)
    assert est.method == "twonn"
    assert set(est.by_method) == {"twonn", "mle"}
    for value in est.by_method.values():
        assert abs(value - 2) < 0.3
    assert est.dimension == est.by_method["twonn"]
    assert est.linear_dimension == 3  # the roll spans R^3 linearly
    assert est.latent_size == 2


def test_linear_subspace_5_in_20():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2000, 5)) @ rng.standard_normal((5, 20)) + 3.0
    est = intrinsic_dimension(x, method="mle", cross_check=("twonn", "lpca"))
    assert est.method == "mle"
    assert abs(est.dimension - 5) < 0.5
    assert abs(est.by_method["twonn"] - 5) < 0.5
    assert est.by_method["lpca"] == pytest.approx(5)
    assert est.linear_dimension == 5
    assert est.ambient_dim == 20 and est.n_used == 2000
    lo, hi = est.spread
    assert lo <= est.dimension <= hi


def test_noisy_circle_is_one_dimensional_and_torch_input():
    rng = np.random.default_rng(2)
    t = rng.uniform(0, 2 * np.pi, 1000)
    x = torch.from_numpy(np.c_[np.cos(t), np.sin(t), 0.5 * np.cos(t)])
    est = intrinsic_dimension(x)
    assert abs(est.dimension - 1) < 0.2


def test_high_dimension_is_underestimated_and_said_so():
    x = np.random.default_rng(3).uniform(size=(1500, 14))
    est = intrinsic_dimension(x)
    assert est.dimension < 14  # known downward bias of nearest-neighbour estimators
    assert est.dimension > 8
    assert any("biased low" in note for note in est.notes)
    assert est.linear_dimension == 14


def test_duplicates_dropped_and_subsample_warns():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((600, 3))
    x = np.r_[x, x[:50]]
    est = intrinsic_dimension(x)
    assert est.n_points == 650 and est.n_used == 600
    assert any("duplicate" in note for note in est.notes)
    with pytest.warns(UserWarning, match="max_points"):
        est = intrinsic_dimension(x, max_points=300)
    assert est.n_used == 300
    assert abs(est.dimension - 3) < 0.6


def test_lattice_ties_give_no_twonn_estimate():
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    est = intrinsic_dimension(np.c_[np.cos(t), np.sin(t)])
    assert math.isnan(est.by_method["twonn"])
    assert any("ties" in note for note in est.notes)
    assert math.isfinite(est.by_method["mle"])


def test_bad_inputs_name_the_argument():
    x = np.random.default_rng(5).standard_normal((50, 3))
    with pytest.raises(BrenierError, match="method"):
        intrinsic_dimension(x, method="pca")
    with pytest.raises(BrenierError, match="cross_check"):
        intrinsic_dimension(x, cross_check=("twonn", "nope"))
    with pytest.raises(BrenierError, match="n_neighbors"):
        intrinsic_dimension(x, n_neighbors=0)
    with pytest.raises(BrenierError, match="X"):
        intrinsic_dimension(x[:2])
    with pytest.raises(BrenierError, match="X"):
        intrinsic_dimension(np.ones(10))
    with pytest.raises(BrenierError, match="distinct"):
        intrinsic_dimension(np.ones((10, 2)))


def test_to_dict_is_json_ready():
    import json

    x, _ = make_swiss_roll(400, random_state=0)
    d = intrinsic_dimension(x).to_dict()
    json.dumps(d)
    assert d["method"] == "twonn" and d["n_points"] == 400
