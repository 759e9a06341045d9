"""Betti numbers, branches and Euler characteristic on manifolds with known topology."""

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brenier import BrenierError
from brenier.analysis.topology import MAX_LANDMARKS, split_at_gap
from brenier.manifold import plot_diagrams, topology


def circle(n, rng, center=(0.0, 0.0), radius=1.0, noise=0.0):
    t = rng.uniform(0, 2 * np.pi, n)
    x = np.c_[np.cos(t), np.sin(t)] * radius + np.asarray(center)
    return x + noise * rng.standard_normal(x.shape)


def sphere(n, rng):
    z = rng.standard_normal((n, 3))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def torus(n, rng, R=2.0, r=1.0):
    u, v = rng.uniform(0, 2 * np.pi, (2, n))
    return np.c_[(R + r * np.cos(v)) * np.cos(u), (R + r * np.cos(v)) * np.sin(u), r * np.sin(v)]


def klein_bottle(n, rng, R=2.0, r=1.0):
    """The Klein bottle embedded in R^4: a tube whose cross-section turns by π around the loop."""
    u, v = rng.uniform(0, 2 * np.pi, (2, n))
    return np.c_[(R + r * np.cos(v)) * np.cos(u), (R + r * np.cos(v)) * np.sin(u),
                 r * np.sin(v) * np.cos(u / 2), r * np.sin(v) * np.sin(u / 2)]


def test_circle():
    topo = topology(circle(400, np.random.default_rng(0), noise=0.05))
    assert topo.backend == "alpha"
    assert topo.betti == [1, 1, 0]
    assert topo.euler_characteristic == 0
    assert len(topo.components) == 1 and topo.components[0].size == 400
    assert topo.gaps[1].significant and topo.gaps[1].upper > 2 * topo.gaps[1].lower
    assert not topo.gaps[0].significant and not topo.gaps[2].significant


def test_sphere():
    topo = topology(sphere(1500, np.random.default_rng(1)))
    assert topo.betti == [1, 0, 1]
    assert topo.euler_characteristic == 2
    assert topo.betti_by_coeff[3] == [1, 0, 1]
    assert topo.orientable is True


def test_torus():
    topo = topology(torus(2500, np.random.default_rng(2)))
    assert topo.betti == [1, 2, 1]
    assert topo.euler_characteristic == 0
    assert topo.orientable is True
    assert [len(d) for d in topo.diagrams] == [len(d) for d in topo.diagrams_by_coeff[2]]


def test_two_disjoint_circles_are_two_branches():
    rng = np.random.default_rng(3)
    a, b = circle(300, rng, noise=0.02), circle(200, rng, center=(4.0, 0.0), noise=0.02)
    x = np.r_[a, b]
    topo = topology(x, max_dim=1)
    assert topo.betti == [2, 2]
    assert topo.euler_characteristic == 0
    assert [c.size for c in topo.components] == [300, 200]
    assert set(topo.components[0].members) == set(range(300))
    assert np.all(topo.labels[:300] == 0) and np.all(topo.labels[300:] == 1)
    assert topo.components[1].centroid[0] == pytest.approx(4.0, abs=0.2)
    assert topo.gaps[0].significant


def test_klein_bottle_z2_and_z3_differ():
    x = klein_bottle(8000, np.random.default_rng(4))
    topo = topology(x, max_dim=2, n_landmarks=220)
    assert topo.backend == "rips"
    assert len(topo.used) == 220
    assert topo.betti_by_coeff[2] == [1, 2, 1]
    assert topo.betti_by_coeff[3] == [1, 1, 0]
    assert topo.orientable is False
    chi = [sum((-1) ** k * b for k, b in enumerate(bs)) for bs in topo.betti_by_coeff.values()]
    assert chi == [0, 0] and topo.euler_characteristic == 0  # χ does not depend on the field
    assert topo.covering_radius > 0
    assert topo.labels.shape == (8000,)


def test_circle_in_high_dimension_uses_rips_on_landmarks():
    rng = np.random.default_rng(5)
    q = np.linalg.qr(rng.standard_normal((12, 12)))[0]
    x = np.c_[circle(1500, rng), 0.03 * rng.standard_normal((1500, 10))] @ q
    topo = topology(x, max_dim=1, n_landmarks=300, orientability=False)
    assert topo.backend == "rips"
    assert topo.betti == [1, 1]
    assert list(topo.betti_by_coeff) == [2]
    assert topo.orientable is None


def test_noise_blob_has_no_holes():
    topo = topology(np.random.default_rng(6).standard_normal((1500, 3)), orientability=False)
    assert topo.betti == [1, 0, 0]
    assert not any(g.significant for g in topo.gaps)


def test_clusters_with_outliers_give_branches_not_outlier_singletons():
    rng = np.random.default_rng(7)
    centres = np.array([[0, 0, 0], [3, 0, 0], [0, 3, 0]], float)
    x = np.concatenate([c + 0.3 * rng.standard_normal((250, 3)) for c in centres])
    x = np.r_[x, [[1.5, 1.5, 1.5]]]  # a lone point between the clusters
    topo = topology(x, max_dim=0)
    assert topo.betti == [3]
    sizes = sorted(c.size for c in topo.components)
    assert sum(sizes) == 751 and min(sizes) >= 250
    for k in range(3):
        assert len(set(topo.labels[250 * k:250 * (k + 1)])) == 1


def test_duplicate_rows_are_labelled_too():
    rng = np.random.default_rng(8)
    x = np.r_[circle(200, rng), circle(200, rng, center=(5, 0))]
    x = np.r_[x, x[:30], x[-30:]]
    topo = topology(x, max_dim=1)
    assert topo.betti == [2, 2]
    assert topo.labels.shape == (460,)
    assert np.all(topo.labels[400:430] == topo.labels[0])
    assert np.all(topo.labels[430:] == topo.labels[399])
    assert any("duplicate" in n for n in topo.notes)


def test_split_at_gap():
    g = split_at_gap(np.array([3.0, 2.8, 0.4, 0.3, 0.1, 0.05]))
    assert g.significant and g.upper == 2.8 and g.lower == 0.4
    assert 0.4 < g.threshold < 2.8
    g = split_at_gap(np.array([1.0, 0.9, 0.8, 0.7, 0.6]))
    assert not g.significant and g.threshold == np.inf
    assert split_at_gap(np.array([0.5])).significant
    assert not split_at_gap(np.array([0.5]), floor=0.6).significant
    assert not split_at_gap(np.array([0.5]), floor=0.3).significant  # not clear of the floor
    g = split_at_gap(np.array([1.5, 1.4]), floor=0.3)  # no noise bars: the floor is the noise
    assert g.significant and g.upper == 1.4 and g.lower == 0.3
    assert not split_at_gap(np.array([])).significant
    g = split_at_gap(np.array([2.0, 0.3, np.inf]), floor=0.5)
    assert g.significant and g.threshold >= 0.5


def test_betti_at_scale():
    topo = topology(circle(300, np.random.default_rng(9)), max_dim=1)
    assert topo.betti_at(0.5) == [1, 1]
    assert topo.betti_at(10.0) == [1, 0]


def test_limits_subsample_and_refuse():
    rng = np.random.default_rng(10)
    x = circle(3000, rng, noise=0.02)
    with pytest.warns(UserWarning, match="max_points"):
        topo = topology(x, max_dim=1, max_points=800)
    assert topo.betti == [1, 1]
    assert topo.covering_radius > 0 and len(topo.labels) == 3000
    with pytest.raises(BrenierError, match="n_landmarks"):
        topology(x, max_dim=2, backend="rips", n_landmarks=MAX_LANDMARKS[2] + 1)
    with pytest.raises(BrenierError, match="max_memory"):
        topology(x, max_memory=1000)


def test_bad_arguments():
    x = circle(50, np.random.default_rng(11))
    with pytest.raises(BrenierError, match="max_dim"):
        topology(x, max_dim=5)
    with pytest.raises(BrenierError, match="backend"):
        topology(x, backend="cech")
    with pytest.raises(BrenierError, match="backend"):
        topology(np.c_[x, x, x], backend="alpha")
    with pytest.raises(BrenierError, match="coeff"):
        topology(x, coeff=4)
    with pytest.raises(BrenierError, match="X"):
        topology(np.full((5, 2), np.nan))


def test_to_dict_and_plot(tmp_path):
    topo = topology(torus(800, np.random.default_rng(12)))
    d = topo.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["betti"] == topo.betti == [1, 2, 1]
    assert [b for b, e in d["diagrams"]["2"][0] if e is None] == [0.0]  # the essential H0 class
    assert d["n_bars"]["2"] == [len(dg) for dg in topo.diagrams]
    short = topo.to_dict(max_bars=3)["diagrams"]["3"]
    assert [len(dg) for dg in short] == [min(3, len(dg)) for dg in topo.diagrams_by_coeff[3]]
    h1 = topo.diagrams_by_coeff[3][1]
    assert short[1][0][1] - short[1][0][0] == pytest.approx(np.max(h1[:, 1] - h1[:, 0]))
    assert "diagrams" not in topo.to_dict(max_bars=0)
    plot_diagrams(topo, tmp_path / "dg.png", title="torus")
    assert (tmp_path / "dg.png").read_bytes()[:4] == b"\x89PNG"


@settings(max_examples=8, deadline=None)
@given(angle=st.floats(0, 2 * np.pi), scale=st.floats(0.01, 100), shift=st.floats(-1e3, 1e3))
def test_betti_invariant_under_similarity(angle, scale, shift):
    rng = np.random.default_rng(13)
    x = np.r_[circle(150, rng, noise=0.03), circle(150, rng, center=(3.5, 1.0), noise=0.03)]
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        topo = topology(scale * x @ rot.T + shift, max_dim=1, orientability=False)
    assert topo.betti == [2, 2]
