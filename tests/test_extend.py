"""Generation: the piecewise-linear extension with and without the singular set, and the plain map."""

import warnings

import numpy as np
import pytest

from brenier import Gaussian, SemiDiscreteOT, UniformBall, UniformCube, datasets
from brenier.analysis.neighbours import nearest_distances
from brenier.generators.ot import OTGenerator
from brenier.ot.extension import PiecewiseLinearExtension, generate, source_sample
from brenier.ot.singular import scaled_angle, singular_set
from brenier.validation import BrenierError


def two_clusters(n=60, gap=2.0, sigma=0.05, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 2)) * sigma + [-gap / 2, 0.0]
    b = rng.normal(size=(n, 2)) * sigma + [gap / 2, 0.0]
    return np.r_[a, b]


@pytest.fixture(scope="module")
def clusters():
    return SemiDiscreteOT("uniform", seed=0).fit(two_clusters())


def test_singular_aware_samples_never_fall_in_the_gap(clusters):
    y = clusters.targets_
    x = generate(clusters, 4000, seed=1, n_samples=100_000)
    assert x.shape == (4000, 2)
    assert np.abs(x[:, 0]).min() > 0.75  # clusters live at |x₀| ≥ 1 − 4σ; the gap is empty
    spacing = nearest_distances(y, y, exclude_self=True)
    assert nearest_distances(x, y).max() < 3 * spacing.max()
    assert (nearest_distances(x, y) > 1e-9).all()  # new points, not copies of targets
    # both clusters are reached in proportion to their mass (no mode collapse)
    assert abs(np.mean(x[:, 0] > 0) - 0.5) < 0.05


def test_naive_extension_fills_the_gap(clusters):
    x = generate(clusters, 4000, seed=1, extension="naive", n_samples=100_000)
    gap = np.abs(x[:, 0]) < 0.7
    assert gap.mean() > 0.02  # mode mixture: blends of the two clusters


def test_plain_map_copies_targets(clusters):
    x = generate(clusters, 500, seed=2, extension="none")
    sobol = UniformCube(2, qmc=True).sample(500, seed=2)  # the same source points as "pl" draws
    np.testing.assert_array_equal(x, clusters.transport(sobol))
    assert (nearest_distances(x, clusters.targets_) == 0).all()
    iid = generate(clusters, 500, seed=2, extension="none", qmc=False)
    np.testing.assert_array_equal(iid, clusters.transport(clusters.source_.sample(500, seed=2)))


def test_extensions_agree_when_nothing_is_singular():
    model = SemiDiscreteOT(UniformBall(2), seed=0).fit(datasets.disc(300, seed=4))
    sing = singular_set(model, threshold=np.pi, n_samples=60_000)
    pl = PiecewiseLinearExtension(model, sing, "pl").sample(1000, seed=5)
    naive = PiecewiseLinearExtension(model, sing, "naive").sample(1000, seed=5)
    np.testing.assert_array_equal(pl, naive)


def test_weights_are_affine_and_reproduce_centroids(clusters):
    sing = singular_set(clusters, n_samples=100_000)
    ext = PiecewiseLinearExtension(clusters, sing, "pl")
    x = clusters.source_.sample(2000, seed=6).astype(float)
    cells, lam = ext.weights(x)
    bounded_ext = PiecewiseLinearExtension(clusters, sing, "pl", support_quantile=0.5)
    bounded_cells, bounded = bounded_ext.weights(x)
    np.testing.assert_array_equal(bounded_cells, cells)
    kept = (lam >= 0).all(axis=1)  # the support bound acts on extrapolated points only
    np.testing.assert_array_equal(bounded[kept], lam[kept])
    np.testing.assert_allclose(lam.sum(axis=1), 1.0, atol=1e-9)
    assert lam.min() >= -ext.max_extrapolation - 1e-9
    inside = (lam >= -1e-12).all(axis=1)  # where x is inside its simplex, Σ λ c = x exactly
    assert inside.mean() > 0.5
    rebuilt = np.einsum("mk,mkd->md", lam[inside], sing.centroids[cells[inside]])
    np.testing.assert_allclose(rebuilt, x[inside], atol=1e-6)
    # the map sends a cell centroid (close) to its target
    c = sing.centroids[:40]
    np.testing.assert_allclose(ext(c), clusters.targets_[:40], atol=0.05)


def test_extrapolation_stays_within_the_support_radius():
    """d = 6: most points lie outside the simplices of their nearest centroids and T̃ extrapolates;
    the support bound keeps T̃(x) within r* (the 0.4-quantile of the targets' nearest-neighbour
    spacing) of a target unless even the simplex's barycentre is further (then λ is that barycentre);
    points inside their simplex keep their barycentric coordinates."""
    y = np.random.default_rng(0).normal(size=(400, 6))
    model = SemiDiscreteOT("uniform", seed=0, max_iter=5).fit(y)
    sing = singular_set(model, n_samples=100_000)
    x = model.source_.sample(3000, seed=1).astype(float)
    r_star = np.quantile(nearest_distances(y, y, exclude_self=True), 0.4)
    free = PiecewiseLinearExtension(model, sing, "pl", support_quantile=None)
    assert free.support_radius is None
    far = nearest_distances(free(x), y) > 1.5 * r_star
    assert far.mean() > 0.02  # unbounded extrapolation leaves the data
    for ext in ("pl", "naive"):
        gen = PiecewiseLinearExtension(model, sing, ext)  # "auto": on in d > 3
        assert gen.support_radius == pytest.approx(r_star)
        cells, lam = gen.weights(x)
        np.testing.assert_allclose(lam.sum(axis=1), 1.0, atol=1e-9)
        r = nearest_distances(gen(x), y)
        beyond = (r > r_star * (1 + 1e-9)) & (lam < 0).any(axis=1)
        active = lam != 0
        centre = np.where(active, 1.0 / active.sum(axis=1, keepdims=True), 0.0)
        np.testing.assert_allclose(lam[beyond], centre[beyond], atol=1e-12)
        assert (r > 1.5 * r_star).mean() < far.mean() / 4
    with pytest.raises(BrenierError, match="support_quantile"):
        PiecewiseLinearExtension(model, sing, "pl", support_quantile=1.5)


def test_support_bound_is_off_by_default_in_the_plane(clusters):
    sing = singular_set(clusters, n_samples=100_000)
    assert PiecewiseLinearExtension(clusters, sing, "pl").support_radius is None
    bounded = PiecewiseLinearExtension(clusters, sing, "pl", support_quantile=0.5)
    assert bounded.support_radius > 0


def test_two_moons_singular_aware_stays_on_the_moons():
    y = datasets.two_moons(1500, seed=0)
    model = SemiDiscreteOT(UniformBall(2), seed=0).fit(y)
    out = {}
    for ext in ("pl", "naive"):
        x = generate(model, 3000, seed=1, extension=ext, n_samples=200_000)
        out[ext] = np.mean(~datasets.two_moons_contains(x, width=0.4))  # outside the moons ± 0.05
    assert out["pl"] < 0.005 and out["naive"] > 0.02


def test_reproducible_and_seeded(clusters):
    a = generate(clusters, 300, seed=7, n_samples=50_000)
    b = generate(clusters, 300, seed=7, n_samples=50_000)
    c = generate(clusters, 300, seed=8, n_samples=50_000)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_bad_arguments(clusters):
    with pytest.raises(BrenierError, match="extension"):
        generate(clusters, 10, extension="smooth")
    with pytest.raises(BrenierError, match="n"):
        generate(clusters, 0)
    with pytest.raises(BrenierError, match="not fitted"):
        generate(SemiDiscreteOT("uniform"), 10)


def test_ot_generator_summarises_large_data():
    mix = datasets.ring8(5000, seed=0)
    gen = OTGenerator(n_targets=400, seed=0).fit(mix.points)
    assert gen.targets_.shape == (400, 2)
    assert gen.weights_.sum() == pytest.approx(1.0)
    # ν_i = share of the data whose nearest summary point is y_i
    nearest = np.argmin(((mix.points[:, None] - gen.targets_[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(gen.weights_, np.bincount(nearest, minlength=400) / 5000)
    x = gen.generate(1000, seed=1)
    radius = np.linalg.norm(x, axis=1)
    assert x.shape == (1000, 2) and np.abs(radius - 1).max() < 0.1
    with pytest.raises(BrenierError, match="not fitted"):
        OTGenerator().generate(5)


def test_ot_generator_has_the_common_interface():
    from brenier.generators.base import Generator

    x = datasets.ring8(500, seed=0).points
    gen = OTGenerator(n_targets=50, seed=0)
    assert isinstance(gen, Generator) and gen.fit(x) is gen
    assert OTGenerator.generate is OTGenerator.sample
    np.testing.assert_array_equal(gen.sample(20, seed=1), gen.generate(20, seed=1))
    assert gen.sample(5).shape == (5, 2)


def test_method_on_the_class(clusters):
    x = clusters.generate(1000, seed=1, extension="pl")
    assert x.shape == (1000, 2) and np.abs(x[:, 0]).min() > 0.75
    naive = clusters.generate(1000, seed=1, extension="naive")
    assert (np.abs(naive[:, 0]) < 0.7).any()


def is_copy(x, y):
    """Rows of x equal to a row of y (exact copies of targets)."""
    return (np.abs(x[:, None, :] - y[None]).max(axis=2) == 0).any(axis=1)


def isolated_targets(sing):
    """Targets whose pair with every other target is singular (their branch is one point)."""
    n = len(sing.targets)
    return np.array([sing.classify(i, np.delete(np.arange(n), i)).all() for i in range(n)])


@pytest.mark.parametrize("n_samples", [100_000, 500])
def test_strict_threshold_gives_no_copies_and_no_singular_edge(clusters, n_samples):
    """κ* = 1 (the neighbourhood rule of d > 3) calls many within-cluster pairs singular: a simplex
    once kept a singular edge, or shrank to one vertex and copied its target (~2.5 % of points).
    Every simplex is now pairwise regular and a blend of ≥ 2 targets, also for the points of
    cells with no centroid estimate (n_samples=500 leaves some unseen)."""
    sing = singular_set(clusters, threshold=float(scaled_angle(1.0)), n_samples=n_samples)
    assert not isolated_targets(sing).any()
    x = UniformCube(2).sample(20_000, seed=9).astype(float)
    y = clusters.targets_
    for ext in ("pl", "naive"):
        gen = PiecewiseLinearExtension(clusters, sing, ext)
        cells, lam = gen.weights(x)
        active = lam != 0
        assert (active.sum(axis=1) >= 2).all()
        out = gen(x)
        assert not is_copy(out, y).any()
        if ext == "pl":
            edge = sing.classify(cells[:, :, None], cells[:, None, :])
            assert not (edge & active[:, :, None] & active[:, None, :]).any()
            i0 = clusters.assign(x)
            assert not (sing.classify(i0[:, None], cells) & active).any()
    unseen = np.flatnonzero(~np.isfinite(sing.centroids).all(axis=1))
    if n_samples == 500:
        assert len(unseen)
        inside = np.isin(clusters.assign(x), unseen)
        assert inside.any() and not is_copy(out[inside], y).any()


def test_only_isolated_targets_are_copied(clusters):
    """With κ* = 0.5 most targets have no regular pair at all (their branch is one point): their
    cells keep the plain map T(x) = y_{i₀}, every other point is a blend."""
    sing = singular_set(clusters, threshold=float(scaled_angle(0.5)), n_samples=100_000)
    y = clusters.targets_
    isolated = isolated_targets(sing)
    assert 0 < isolated.sum() < len(y)
    x = UniformCube(2).sample(20_000, seed=10).astype(float)
    out = PiecewiseLinearExtension(clusters, sing, "pl")(x)
    i0 = clusters.assign(x)
    np.testing.assert_array_equal(is_copy(out, y), isolated[i0])
    np.testing.assert_array_equal(out[isolated[i0]], y[i0[isolated[i0]]])


def test_qmc_source_is_seeded_and_auto_on_the_cube(clusters):
    a = generate(clusters, 300, seed=7, n_samples=50_000, qmc=True)
    np.testing.assert_array_equal(a, generate(clusters, 300, seed=7, n_samples=50_000, qmc=True))
    np.testing.assert_array_equal(a, generate(clusters, 300, seed=7, n_samples=50_000))  # "auto"
    assert not np.allclose(a, generate(clusters, 300, seed=8, n_samples=50_000, qmc=True))
    iid = generate(clusters, 300, seed=7, n_samples=50_000, qmc=False)
    np.testing.assert_array_equal(iid, generate(clusters, 300, seed=7, n_samples=50_000, qmc=False))
    assert not np.allclose(a, iid)
    # the same points through every entry point
    ext = PiecewiseLinearExtension(clusters, clusters.singular_set(n_samples=50_000))
    np.testing.assert_array_equal(a, ext.sample(300, seed=7))
    np.testing.assert_array_equal(iid, ext.sample(300, seed=7, qmc=False))
    np.testing.assert_array_equal(a, clusters.generate(300, seed=7, n_samples=50_000))
    np.testing.assert_array_equal(iid, clusters.generate(300, seed=7, n_samples=50_000, qmc=False))
    # a cube built with qmc=True draws i.i.d. points on request, and the other way round
    cube, sobol = UniformCube(2), UniformCube(2, qmc=True)
    np.testing.assert_array_equal(source_sample(cube, 100, 3, qmc=True), sobol.sample(100, seed=3))
    np.testing.assert_array_equal(source_sample(sobol, 100, 3, qmc=False), cube.sample(100, seed=3))
    assert sobol.qmc and not cube.qmc  # the sources themselves are left alone


def test_qmc_evens_out_the_mode_counts(clusters):
    """Sobol points give each cluster (half the mass) a share of n that varies far less from seed
    to seed than the binomial spread √(1/4n) of i.i.d. points; any n, no warnings."""
    spread = {}
    for qmc in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            share = [np.mean(generate(clusters, 1000, seed=s, n_samples=50_000, qmc=qmc)[:, 0] > 0)
                     for s in range(20)]
        spread[qmc] = np.std(share)
    assert spread[False] > 0.5 * np.sqrt(0.25 / 1000)  # i.i.d.: binomial noise (≈ 0.016)
    assert spread[True] < 0.25 * spread[False]  # measured ≈ 0.001


def test_qmc_needs_a_cube_source():
    rng = np.random.default_rng(0)
    model = SemiDiscreteOT(Gaussian(2), seed=0, max_iter=30).fit(rng.normal(size=(30, 2)))
    with pytest.raises(BrenierError, match="qmc"):
        generate(model, 10, seed=1, qmc=True)
    with pytest.raises(BrenierError, match="qmc"):
        generate(model, 10, seed=1, extension="none", qmc=True)
    with pytest.raises(BrenierError, match="qmc"):
        generate(model, 10, seed=1, qmc="sometimes")
    auto = generate(model, 50, seed=1, n_samples=20_000)  # "auto": i.i.d. for a Gaussian
    np.testing.assert_array_equal(auto, generate(model, 50, seed=1, n_samples=20_000, qmc=False))
    with pytest.raises(BrenierError, match="qmc"):
        OTGenerator("gaussian", qmc=True).fit(rng.normal(size=(30, 2)))
