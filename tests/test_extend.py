"""Generation: the piecewise-linear extension with and without the singular set, and the plain map."""

import numpy as np
import pytest

from brenier import SemiDiscreteOT, UniformBall, datasets
from brenier.metrics import nearest_distances
from brenier.ot.extend import OTGenerator, PiecewiseLinearExtension, generate
from brenier.ot.singular import singular_set
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
    src = clusters.source_.sample(500, seed=2)
    np.testing.assert_array_equal(x, clusters.transport(src))
    assert (nearest_distances(x, clusters.targets_) == 0).all()


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
    np.testing.assert_allclose(lam.sum(axis=1), 1.0, atol=1e-9)
    assert lam.min() >= -ext.max_extrapolation - 1e-9
    inside = (lam >= -1e-12).all(axis=1)  # where x is inside its simplex, Σ λ c = x exactly
    assert inside.mean() > 0.5
    rebuilt = np.einsum("mk,mkd->md", lam[inside], sing.centroids[cells[inside]])
    np.testing.assert_allclose(rebuilt, x[inside], atol=1e-6)
    # the map sends a cell centroid (close) to its target
    c = sing.centroids[:40]
    np.testing.assert_allclose(ext(c), clusters.targets_[:40], atol=0.05)


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


def test_method_on_the_class(clusters):
    x = clusters.generate(1000, seed=1, extension="pl")
    assert x.shape == (1000, 2) and np.abs(x[:, 0]).min() > 0.75
    naive = clusters.generate(1000, seed=1, extension="naive")
    assert (np.abs(naive[:, 0]) < 0.7).any()
