"""One cell-statistics object from the sampled top-2 pass and from the exact power diagram."""

import json

import numpy as np
import pytest

from brenier import Gaussian, SemiDiscreteOT, UniformBall, UniformCube, datasets
from brenier.ot.assign import Assigner
from brenier.ot.cells.statistics import (
    cell_statistics,
    exact_statistics,
    facet_weights,
    sampled_statistics,
)
from brenier.ot.singular import classify_pairs, singular_set
from brenier.validation import BrenierError


@pytest.fixture(scope="module")
def disc_model():
    return SemiDiscreteOT(UniformBall(2), seed=0).fit(datasets.disc(150, seed=1))


def lookup(pairs):
    return {(int(i), int(j)): k for k, (i, j) in enumerate(pairs)}


def test_sampled_statistics_agree_with_the_exact_diagram(disc_model):
    model = disc_model
    exact = cell_statistics(model, exact=True)
    sampled = cell_statistics(model, n_samples=400_000, seed=1)
    assert exact.exact and exact.n_samples is None and exact.counts is None
    assert not sampled.exact and sampled.counts.sum() == 400_000
    n = sampled.n_samples
    sd = np.sqrt(exact.masses * (1 - exact.masses) / n)
    assert np.all(np.abs(sampled.masses - exact.masses) < 5 * sd + 1e-12)
    np.testing.assert_allclose(sampled.centroids, exact.centroids, atol=0.02)
    assert sampled.potential_mean == pytest.approx(exact.potential_mean, abs=5e-3)
    # the exact pairs are the facets with positive measure, sorted, i < j
    assert (exact.pairs[:, 0] < exact.pairs[:, 1]).all() and (exact.facet_measure > 0).all()
    keys = exact.pairs[:, 0] * len(exact.masses) + exact.pairs[:, 1]
    assert (np.diff(keys) > 0).all()
    # every facet of some size is sampled, and its measure is estimated within MC error
    where = lookup(sampled.pairs)
    big = exact.facet_measure > np.quantile(exact.facet_measure, 0.5)
    assert all(tuple(p) in where for p in exact.pairs[big].tolist())
    est = sampled.facet_measure[[where[tuple(p)] for p in exact.pairs[big].tolist()]]
    rel = np.abs(est - exact.facet_measure[big]) / exact.facet_measure[big]
    assert np.median(rel) < 0.15
    # exact 2-D facets: segments whose midpoints are the facet centres, on the bisector of (i, j)
    seg = exact.segments
    assert seg.shape == (len(exact.pairs), 2, 2)
    np.testing.assert_allclose(exact.facet_centers, seg.mean(axis=1))
    y, h = model.targets_, model.heights_
    i, j = exact.pairs.T
    for end in (0, 1):
        p = seg[:, end]
        np.testing.assert_allclose(np.sum(p * y[i], 1) + h[i], np.sum(p * y[j], 1) + h[j], atol=1e-9)


def test_exact_potential_mean_is_the_integral_of_u(disc_model):
    model = disc_model
    x = model.source_.sample(1_000_000, seed=4)
    u = model.potential(x)
    stats = exact_statistics(model.source_, model.targets_, model.heights_)
    assert stats.potential_mean == pytest.approx(u.mean(), abs=4 * u.std() / np.sqrt(len(u)))


def test_exact_statistics_in_three_dimensions():
    y = np.random.default_rng(3).random((60, 3))
    model = SemiDiscreteOT(UniformCube(3), seed=0).fit(y)
    exact = cell_statistics(model, exact=True)
    assert exact.exact and exact.segments is None and exact.facet_centers is None
    sampled = cell_statistics(model, n_samples=300_000, seed=2)
    np.testing.assert_allclose(sampled.masses, exact.masses, atol=2e-3)
    np.testing.assert_allclose(sampled.centroids, exact.centroids, atol=0.03)
    where = lookup(exact.pairs)
    seen = sampled.counts > 200  # pairs many samples have as best two are facets inside D
    assert all(tuple(p) in where for p in sampled.pairs[seen].tolist())
    s = singular_set(model, exact=True)
    assert s.n_samples is None and s.segments is None and s.singular_segments is None
    json.dumps(s.to_dict())


def reference_hessian(assigner, stream, h, batch, chunk, quantile):
    """The Monte-Carlo Hessian estimate written out sample by sample: τ = the quantile of the
    facet distances (s_1 − s_2)/|y_a − y_b| of the first chunk; each sample within τ of its
    facet adds 1/(2 B τ |y_a − y_b|) to w_ab and w_ba and one to the counts of rows a and b."""
    y = assigner.targets
    n = len(y)
    assigner.set_heights(h)
    W, counts, hits = np.zeros((n, n)), np.zeros(n), np.zeros(n, np.int64)
    u, tau = 0.0, None
    for start in range(0, batch, chunk):
        x = stream.draw(min(chunk, batch - start))
        idx, s = assigner.top_k(x, 2)
        u += float(np.sum(s[:, 0], dtype=np.float64) + np.sum(assigner.row_offset(x)))
        np.add.at(hits, idx[:, 0], 1)
        span = np.array([np.linalg.norm(y[a] - y[b]) for a, b in idx])
        dist = (s[:, 0] - s[:, 1]).astype(np.float64) / span
        if tau is None:
            tau = float(np.quantile(dist, quantile))
        for (a, b), t, length in zip(idx, dist, span, strict=True):
            if t < tau:
                W[a, b] += 1.0 / (2 * batch * tau * length)
                W[b, a] += 1.0 / (2 * batch * tau * length)
                counts[a] += 1
                counts[b] += 1
    return W, counts, hits / batch, u / batch


@pytest.mark.parametrize("backend", ["kdtree", "torch"])
def test_hessian_weights_are_the_monte_carlo_newton_estimate(backend):
    rng = np.random.default_rng(5)
    y = rng.normal(size=(40, 3))
    h = rng.normal(size=40) * 0.3
    source = Gaussian(3)
    assigner = Assigner(y, source.mean(), backend, "cpu")
    batch, chunk = 20_000, 6_000
    W_ref, counts_ref, masses_ref, u_ref = reference_hessian(assigner, source.stream(7), h, batch, chunk, 0.2)
    assigner.set_heights(h)
    stats = sampled_statistics(assigner, source.stream(7), batch, chunk=chunk, strip_quantile=0.2,
                               centroids=False)
    W, counts = facet_weights(stats, y)
    np.testing.assert_allclose(W.toarray(), W_ref, rtol=1e-12, atol=0)
    assert (abs(W - W.T) > 0).nnz == 0 and W.nnz == np.count_nonzero(W_ref)
    np.testing.assert_array_equal(counts, counts_ref)
    np.testing.assert_array_equal(stats.masses, masses_ref)
    assert stats.potential_mean == pytest.approx(u_ref, rel=1e-12)
    assert stats.centroids is None and stats.facet_centers is None
    # top-1 only: the same masses and ∫ u_h dμ, no pairs
    assigner.set_heights(h)
    plain = sampled_statistics(assigner, source.stream(7), batch, chunk=chunk, strip_quantile=0.2,
                               facets=False)
    np.testing.assert_array_equal(plain.masses, stats.masses)
    assert plain.potential_mean == stats.potential_mean and len(plain.pairs) == 0


def test_pairs_and_counts_over_more_samples_than_one_merge():
    """Past 2^20 samples the pair tally is merged in steps: the counts are still those of every
    sample's best two cells."""
    model = SemiDiscreteOT(Gaussian(2), seed=0, method="monte-carlo", max_iter=3).fit(
        np.random.default_rng(1).normal(size=(30, 2)))
    n = (1 << 20) + 50_000
    stats = cell_statistics(model, n_samples=n, seed=3)
    idx, _ = model.top_k(model.source_.stream(3).draw(n), 2)
    keys, counts = np.unique(np.sort(idx, axis=1) @ [30, 1], return_counts=True)
    np.testing.assert_array_equal(stats.pairs, np.c_[keys // 30, keys % 30])
    np.testing.assert_array_equal(stats.counts, counts)
    assert 0 < stats.facet_counts.sum() < n


def test_the_singular_set_uses_the_exact_facets_in_the_plane():
    """The 2-D singular set from the exact diagram: its segments separate two clusters in a disc
    and cross it (length ≈ a chord); one convex cluster has none."""
    disc = UniformBall(2, radius=1.0)
    a = UniformBall(2, radius=0.3).sample(60, seed=1) + [-1.0, 0.0]
    b = UniformBall(2, radius=0.3).sample(60, seed=2) + [1.0, 0.3]
    y = np.r_[a, b]
    model = SemiDiscreteOT(disc, seed=0).fit(y)
    sing = singular_set(model, exact=True)
    assert sing.n_samples is None and sing.counts is None
    side = np.r_[np.zeros(60), np.ones(60)]
    i, j = sing.pairs.T
    np.testing.assert_array_equal(sing.singular, side[i] != side[j])
    length = np.linalg.norm(sing.singular_segments[:, 1] - sing.singular_segments[:, 0], axis=1).sum()
    assert 1.5 < length < 2.2
    assert sing.branches().max() == 1
    json.dumps(sing.to_dict())
    g = (np.arange(8) + 0.5) / 8
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    square = UniformCube(2, 0, 1)
    fit = SemiDiscreteOT(square, seed=0).fit(grid)
    one = classify_pairs(exact_statistics(square, grid, fit.heights_), grid)
    assert len(one.singular_pairs) == 0 and len(one.singular_segments) == 0


def test_exact_statistics_need_an_exact_source_and_no_sample_size(disc_model):
    with pytest.raises(BrenierError, match="n_samples"):
        cell_statistics(disc_model, n_samples=1000, exact=True)
    model = SemiDiscreteOT(Gaussian(2), seed=0, max_iter=3).fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(BrenierError, match="source"):
        singular_set(model, exact=True)
    assert singular_set(model, n_samples=20_000).n_samples == 20_000  # sampled by default
