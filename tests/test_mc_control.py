"""The Monte-Carlo Newton solver's step control: the χ² noise model, the certifying batch, the
line search on replayed samples, the facet sub-batch and the guard of disconnected cells."""

import numpy as np
import pytest
import scipy.sparse as sp

from brenier import SemiDiscreteOT, UniformCube
from brenier.ot.assign import Assigner
from brenier.ot.cells.statistics import sampled_statistics
from brenier.ot.result import mass_error
from brenier.ot.solvers.linalg import in_largest_component, sampled_newton_direction
from brenier.ot.solvers.monte_carlo import (
    CERT_SD,
    certify_batch,
    chi2_sd,
    line_search,
    replay_chi2,
)


def test_chi2_sd_matches_the_spread_of_unbiased_estimates():
    rng = np.random.default_rng(0)
    n, batch = 200, 20000
    nu = np.full(n, 1 / n)
    mu = nu * (1 + 0.1 * rng.standard_normal(n))
    mu /= mu.sum()
    true = float(np.sum((mu - nu) ** 2 / nu))
    est = [mass_error(rng.multinomial(batch, mu) / batch, nu, batch)["chi2"] for _ in range(400)]
    assert abs(np.mean(est) - true) < 3 * np.std(est) / np.sqrt(len(est))  # unbiased
    assert np.std(est) == pytest.approx(chi2_sd(n, batch, true), rel=0.2)


@pytest.mark.parametrize("chi2", [0.0, 1e-3, 5e-3])
def test_certify_batch_is_the_smallest_batch_with_the_required_precision(chi2):
    n, tol = 5000, 2.5e-3
    b = certify_batch(n, tol, chi2)
    assert chi2_sd(n, b, chi2) <= CERT_SD * tol * (1 + 1e-9)
    assert chi2_sd(n, int(0.95 * b), chi2) > CERT_SD * tol


def test_line_search_shortens_an_overshooting_step_and_rejects_an_ascent():
    target = np.array([1.0, -2.0, 0.5])
    h = np.zeros(3)

    def trial(heights, _n):
        return float(np.sum((heights - target) ** 2))

    overshoot = 4 * (h - target)  # the full step lands 3× as far on the other side
    tau, tries = line_search(trial, h, overshoot, 1.0, 100, floor=0.0, slack=0.0)
    assert (tau, tries) == (0.25, 3)
    tau, tries = line_search(trial, h, target - h, 1.0, 100, floor=0.0, slack=0.0)  # uphill
    assert tau == 0.0 and tries > 1


def test_replayed_samples_are_the_same_for_every_height():
    y = np.random.default_rng(0).standard_normal((30, 3))
    nu = np.full(30, 1 / 30)
    source = UniformCube(3)
    stream = source.stream(4)
    state = stream.state()
    assigner = Assigner(y, source.mean())
    h = np.zeros(30)
    first = replay_chi2(assigner, stream, state, h, nu, 5000, 1024)
    assert replay_chi2(assigner, stream, state, h, nu, 5000, 1024) == first
    other = replay_chi2(assigner, stream, state, h + 0.3 * np.eye(30)[0], nu, 5000, 1024)
    assert other != first
    fresh = source.stream(5)
    assert replay_chi2(assigner, fresh, fresh.state(), h, nu, 5000, 1024) != first


def test_facet_sub_batch_gives_the_facets_of_its_prefix_and_the_masses_of_all():
    y = np.random.default_rng(1).standard_normal((40, 3))
    source = UniformCube(3)
    assigner = Assigner(y, source.mean())
    common = dict(chunk=4096, strip_quantile=0.2, centroids=False)
    part = sampled_statistics(assigner, source.stream(2), 32768, facet_samples=8192, **common)
    prefix = sampled_statistics(assigner, source.stream(2), 8192, **common)
    whole = sampled_statistics(assigner, source.stream(2), 32768, **common)
    np.testing.assert_array_equal(part.pairs, prefix.pairs)
    np.testing.assert_array_equal(part.facet_counts, prefix.facet_counts)
    np.testing.assert_allclose(part.facet_measure, prefix.facet_measure)
    np.testing.assert_array_equal(part.masses, whole.masses)


def test_cells_cut_off_from_the_facet_graph_move_by_bounded_steps():
    # cells 0–3: a well-sampled chain; 4–5: joined to each other only (their facets to the
    # rest were missed). The pair {4, 5} lacks mass; without the guard L leaves its common
    # height free and the direction would be ~1e6 times the typical step.
    rows, cols = [0, 1, 2, 4], [1, 2, 3, 5]
    w = sp.coo_matrix((np.ones(4), (rows, cols)), shape=(6, 6))
    w = (w + w.T).tocsr()
    nu = np.full(6, 1 / 6)
    grad = np.array([0.01, 0.01, 0.01, 0.01, -0.02, -0.02])
    assert in_largest_component(w).tolist() == [True] * 4 + [False] * 2
    delta = sampled_newton_direction(w, np.full(6, 100.0), grad, nu, direct=True)
    assert np.all(np.isfinite(delta))
    assert np.max(np.abs(delta)) < 1.0
    assert delta[4] < 0 and delta[5] < 0  # raised (h − Δ) to gain mass


def test_multiscale_and_voronoi_starts_reach_the_same_solution():
    y = np.random.default_rng(3).standard_normal((300, 4))
    y[:150] = 0.05 * y[:150] + 3.0  # one tight cluster beside a wide one
    fits = {s: SemiDiscreteOT(UniformCube(4), start=s, method="monte-carlo", seed=0).fit(y)
            for s in ("voronoi", "multiscale")}
    x = UniformCube(4).sample(20000, seed=9)
    for model in fits.values():
        assert model.converged_
        assert model.mass_error(n_samples=1 << 20, seed=5)["chi2"] < 2 * model.tol
    agree = fits["voronoi"].assign(x) == fits["multiscale"].assign(x)
    assert agree.mean() > 0.9


def clustered_targets(n, k, dim, width, seed=0):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, k, n)
    return rng.standard_normal((k, dim))[label] + width * rng.standard_normal((n, dim)), label


def test_targets_clustered_at_1e_6_of_their_spread_converge():
    y, _ = clustered_targets(300, 6, 6, 1e-6)
    model = SemiDiscreteOT(UniformCube(6), start="multiscale", method="monte-carlo", seed=0,
                           max_iter=40).fit(y)
    assert model.converged_
    assert model.mass_error(n_samples=1 << 21, seed=5)["chi2"] < 2 * model.tol


def test_bridges_restore_the_facets_between_tight_clusters():
    from brenier.ot.cells.bridges import bridge_weights, components_to_bridge
    from brenier.ot.cells.exact import exact_diagram
    from brenier.ot.cells.statistics import facet_weights
    from brenier.ot.solvers.start import sampled_start

    y, _ = clustered_targets(120, 4, 2, 1e-5)
    source = UniformCube(2)
    h = sampled_start(y, source.mean(), 0.5)
    assigner = Assigner(y, source.mean())
    assigner.set_heights(h)
    stats = sampled_statistics(assigner, source.stream(1), 1 << 17, chunk=1 << 15,
                               strip_quantile=0.2, centroids=False)
    w, _ = facet_weights(stats, y)
    comp, groups = components_to_bridge(w)
    assert len(groups) >= 2  # the strips missed the facets between clusters: the graph fell apart
    replay = source.stream(1)
    bridges, counts = bridge_weights(assigner, replay, replay.state(), 1 << 17, 1 << 15, h, comp,
                                     groups, stats.strip_width)
    big = np.isin(comp, groups)
    b = bridges.tocoo()
    assert np.all(comp[b.row] != comp[b.col]) and big[b.row].all() and big[b.col].all()
    assert counts.sum() > 0
    exact = (-exact_diagram(source, y, h).hessian(y)).tocsr()
    e = exact.tocoo()
    cross = (e.row != e.col) & (comp[e.row] != comp[e.col]) & big[e.row] & big[e.col]
    assert bridges.sum() == pytest.approx(e.data[cross].sum(), rel=0.15)
    heaviest = np.argsort(-b.data)[:4]  # pair by pair, too
    np.testing.assert_allclose(b.data[heaviest], exact[b.row[heaviest], b.col[heaviest]].A1, rtol=0.25)
