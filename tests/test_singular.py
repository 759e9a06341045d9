"""The singular set of u_h: adjacent cells, dihedral angles, the scale-aware automatic threshold."""

import numpy as np
import pytest

from brenier import SemiDiscreteOT, UniformBall, datasets
from brenier.ot.cells.statistics import cell_statistics
from brenier.ot.singular import dihedral_angles, scaled_angle, singular_set
from brenier.validation import BrenierError


def two_clusters(n=60, gap=2.0, sigma=0.05, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 2)) * sigma + [-gap / 2, 0.0]
    b = rng.normal(size=(n, 2)) * sigma + [gap / 2, 0.0]
    return np.r_[a, b], np.r_[np.zeros(n, int), np.ones(n, int)]


@pytest.fixture(scope="module")
def clusters():
    y, labels = two_clusters()
    return SemiDiscreteOT("uniform", seed=0).fit(y), labels


def test_singular_pairs_are_exactly_the_pairs_across_the_gap(clusters):
    model, labels = clusters
    s = singular_set(model, n_samples=200_000)
    i, j = s.pairs.T
    across = labels[i] != labels[j]
    assert across.any() and (~across).any()
    np.testing.assert_array_equal(s.singular, across)
    # branches = connected pieces joined by regular facets = the two clusters
    branches = s.branches()
    assert branches.max() == 1
    assert len(np.unique(branches[labels == 0])) == 1 and len(np.unique(branches[labels == 1])) == 1
    assert s.auto and 0 < s.threshold < np.pi


def test_pairs_are_adjacent_cells_with_counted_samples(clusters):
    model, _ = clusters
    stats = cell_statistics(model, n_samples=100_000, seed=3)
    assert (stats.pairs[:, 0] < stats.pairs[:, 1]).all() and (stats.counts > 0).all()
    assert stats.counts.sum() == 100_000  # every sample has two best cells
    np.testing.assert_allclose(stats.masses, model.weights_, atol=0.01)  # the fit is exact
    # facet points lie on their facet: equal scores of the two cells, and those two are the best
    ok = np.isfinite(stats.facet_centers).all(axis=1) & (stats.counts > 50)
    fc, pr = stats.facet_centers[ok], stats.pairs[ok]
    top, _ = model.top_k(fc, 2)
    same = np.sort(top, axis=1) == pr
    assert same.all(axis=1).mean() > 0.9


def test_facet_measures_and_centroids_match_the_exact_power_diagram():
    from brenier.ot.cells.exact import exact_diagram

    y = datasets.disc(150, seed=1)
    model = SemiDiscreteOT(UniformBall(2), seed=0).fit(y)
    stats = cell_statistics(model, n_samples=400_000, seed=1)
    exact = exact_diagram(model.source_, y, model.heights_)
    np.testing.assert_allclose(stats.centroids, exact.centroids(), atol=0.02)
    key = {tuple(p): k for k, p in enumerate(np.sort(exact.pairs, axis=1))}
    big = stats.facet_measure > np.quantile(stats.facet_measure, 0.5)
    ref = np.array([exact.facet_mass[key[tuple(p)]] for p in stats.pairs[big]])
    rel = np.abs(stats.facet_measure[big] - ref) / ref
    assert np.median(rel) < 0.15


def test_angles_follow_the_normals_of_the_planes(clusters):
    model, _ = clusters
    s = singular_set(model, n_samples=50_000)
    y = model.targets_
    ni = np.c_[y[s.pairs[:, 0]], -np.ones(len(s.pairs))]
    nj = np.c_[y[s.pairs[:, 1]], -np.ones(len(s.pairs))]
    cos = np.sum(ni * nj, 1) / np.linalg.norm(ni, axis=1) / np.linalg.norm(nj, axis=1)
    np.testing.assert_allclose(s.angles, np.arccos(np.clip(cos, -1, 1)), atol=1e-6)
    np.testing.assert_allclose(s.distances, np.linalg.norm(y[s.pairs[:, 0]] - y[s.pairs[:, 1]], axis=1))
    # θ̂ is the same dihedral angle for the pair seen from its midpoint in units of ℓ_ij
    ell = np.maximum(s.spacing[s.pairs[:, 0]], s.spacing[s.pairs[:, 1]])
    d = (y[s.pairs[:, 0]] - y[s.pairs[:, 1]]) / (2 * ell[:, None])
    np.testing.assert_allclose(s.scaled_angles, dihedral_angles(d, -d), atol=1e-9)
    np.testing.assert_allclose(scaled_angle(2.0), np.pi / 2)


@pytest.mark.parametrize("scale, shift", [(10.0, 0.0), (0.1, 0.0), (1.0, 5.0)])
def test_auto_threshold_is_scale_and_translation_invariant(clusters, scale, shift):
    model, _ = clusters
    y = model.targets_
    moved = SemiDiscreteOT("uniform", seed=0).fit(y * scale + shift)
    a = singular_set(model, n_samples=100_000)
    b = singular_set(moved, n_samples=100_000)
    np.testing.assert_array_equal(a.pairs, b.pairs)
    np.testing.assert_array_equal(a.singular, b.singular)
    assert a.threshold == pytest.approx(b.threshold)
    np.testing.assert_allclose(a.ratios, b.ratios, rtol=1e-9)
    assert not np.allclose(a.angles, b.angles)  # the raw AE-OT angle is not invariant


def test_convex_target_is_one_branch():
    model = SemiDiscreteOT(UniformBall(2), seed=0).fit(datasets.disc(400, seed=2))
    s = singular_set(model, n_samples=100_000)
    assert s.branches().max() == 0
    assert s.singular.mean() < 0.01


def test_manual_threshold_overrides(clusters):
    model, _ = clusters
    none = singular_set(model, threshold=np.pi, n_samples=20_000)
    assert not none.singular.any() and not none.auto
    every = singular_set(model, threshold=1e-9, n_samples=20_000)
    assert every.singular.all()
    np.testing.assert_array_equal(every.classify([0, 0], [1, 0]), [True, False])
    for bad in ("sometimes", -1.0, 4.0, 0.0):
        with pytest.raises(BrenierError, match="threshold"):
            singular_set(model, threshold=bad)


def test_summary_is_json_ready(clusters):
    import json

    model, _ = clusters
    d = singular_set(model, n_samples=20_000).to_dict()
    assert d["n_branches"] == 2 and d["n_singular"] == sum(d["facets"]["singular"])
    json.dumps(d)


def test_unfitted_model_is_a_user_error():
    with pytest.raises(BrenierError, match="not fitted"):
        singular_set(SemiDiscreteOT("uniform"))


def test_method_on_the_class(clusters):
    model, labels = clusters
    s = model.singular_set(n_samples=100_000)
    i, j = s.pairs.T
    np.testing.assert_array_equal(s.singular, labels[i] != labels[j])


def test_high_dimensional_auto_rule_separates_clusters():
    """d > 3: the branch rule finds the two clusters, makes every pair across the gap singular and
    every in-cluster pair regular, and generated points never land in the gap."""
    rng = np.random.default_rng(1)
    d, n = 6, 80
    shift = np.zeros(d)
    shift[0] = 1.0
    labels = np.r_[np.zeros(n, int), np.ones(n, int)]
    y = rng.normal(size=(2 * n, d)) * 0.15 + np.where(labels[:, None] == 0, -shift, shift)
    # the rule depends on the targets and the adjacency of the power diagram, not on how well
    # the masses are matched: a few solver steps keep the test fast (a full solve takes 10)
    model = SemiDiscreteOT("uniform", seed=0, max_iter=5).fit(y)
    s = singular_set(model)
    assert s.rule == "branches" and s.auto and s.kappa == np.inf
    assert len(np.unique(s.partition)) == 2
    assert np.unique(s.partition[labels == 0]).size == 1  # one branch per cluster
    i, j = s.pairs.T
    across = labels[i] != labels[j]
    assert across.any()
    np.testing.assert_array_equal(s.singular, across)
    np.testing.assert_array_equal(s.classify(i, j), across)
    summary = s.to_dict()
    assert summary["rule"] == "branches" and summary["kappa"] is None and summary["n_branches"] == 2
    x = model.generate(2000, seed=2)
    assert np.all(np.abs(x[:, 0]) > 0.3)  # the gap |x₀| < 0.3 stays empty
    naive = model.generate(2000, seed=2, extension="naive")
    assert np.mean(np.abs(naive[:, 0]) < 0.3) > 0.01  # ignoring the singular set fills it


def test_topology_threshold_cuts_the_graph_into_the_data_branches():
    """threshold="topology": β₀ of the targets (persistent homology) decides how many branches
    there are; the cut leaves exactly the clusters, and in-cluster pairs stay regular."""
    rng = np.random.default_rng(2)
    d, n = 6, 50
    centres = np.eye(d)[:3] * 1.5
    labels = np.repeat(np.arange(3), n)
    y = rng.normal(size=(3 * n, d)) * 0.15 + centres[labels]
    model = SemiDiscreteOT("uniform", seed=0, max_iter=5).fit(y)
    s = singular_set(model, threshold="topology")
    branches = s.branches()
    assert len(np.unique(branches)) == 3
    for c in range(3):  # each branch is one cluster
        assert len(np.unique(branches[labels == c])) == 1
    i, j = s.pairs.T
    across = labels[i] != labels[j]
    assert across.any() and s.singular[across].all()
    assert (~s.singular[~across]).mean() > 0.9
    x = model.generate(1000, seed=1, threshold="topology")
    # nothing between clusters: a blend of two is about as far from both centres (ratio ≈ 1; the
    # naive extension puts ~18 % of its samples above 0.7), a sample of one cluster — even one
    # extrapolated past its outer targets, up to ~1.1 from the centre — is much nearer to its own
    dist = np.sort(np.linalg.norm(x[:, None] - centres[None], axis=2), axis=1)
    assert np.all(dist[:, 0] < 0.85 * dist[:, 1])
    with pytest.raises(BrenierError, match="threshold"):
        singular_set(model, threshold="betti")
