"""Metrics: mode coverage (PacGAN), sliced Wasserstein, memorisation."""

import numpy as np
import pytest

from brenier import datasets
from brenier.metrics import (
    memorisation,
    mixture_hq,
    mode_metrics,
    nearest_distances,
    sliced_wasserstein,
)
from brenier.validation import BrenierError


def test_real_mixture_scores_its_expected_hq():
    mix = datasets.grid25(20000, seed=0)
    m = mode_metrics(mix.points, mix.centers, mix.sigma)
    assert m["modes"] == 25
    assert m["hq"] == pytest.approx(mixture_hq(2), abs=0.3)  # 98.89 % in 2-D at 3σ
    assert m["reverse_kl"] < 0.005
    assert mixture_hq(2) == pytest.approx(100 * (1 - np.exp(-4.5)))


def test_collapse_and_mixture_are_caught():
    c = datasets.ring8_centers()
    one_mode = np.repeat(c[:1], 100, axis=0)
    m = mode_metrics(one_mode, c, 0.01)
    assert m["modes"] == 1 and m["hq"] == 100.0
    assert m["reverse_kl"] == pytest.approx(np.log(8))
    between = 0.5 * (c[:4] + c[1:5])  # midpoints between neighbouring modes: all mixed
    m = mode_metrics(between, c, 0.01)
    assert m == {"modes": 0, "hq": 0.0, "reverse_kl": float("inf")}
    half = np.r_[np.repeat(c[:2], 50, axis=0), between[:1].repeat(100, axis=0)]
    m = mode_metrics(half, c, 0.01)
    assert m["modes"] == 2 and m["hq"] == 50.0 and m["reverse_kl"] == pytest.approx(np.log(4))


def test_sliced_wasserstein():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3000, 2))
    assert sliced_wasserstein(a, a) == pytest.approx(0.0, abs=1e-12)
    t = np.array([3.0, 4.0])
    # SW2 of a translation: (E_θ ⟨θ, t⟩²)^{1/2} = |t| / √d
    assert sliced_wasserstein(a, a + t, n_projections=2000) == pytest.approx(5 / np.sqrt(2), rel=0.03)
    b = rng.normal(size=(3000, 2))
    assert sliced_wasserstein(a, b) < 0.1


def test_memorisation():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(5000, 2))
    copies = train[:500] + 1e-9
    m = memorisation(copies, train)
    assert m["copies"] == 1.0 and m["near"] == 1.0 and m["exact"] == 0.0  # rounded copies
    m = memorisation(np.r_[train[:100], copies[:300]], train)
    assert m["exact"] == pytest.approx(0.25) and m["copies"] == 1.0
    fresh = rng.normal(size=(5000, 2))
    m = memorisation(fresh, train, quantile=0.05)
    assert m["copies"] == 0.0 and m["exact"] == 0.0
    assert m["near"] == pytest.approx(0.05, abs=0.02)  # fresh data sit at the data's own spacing
    assert m["tau"] > 0 and m["reference"] == 0.05


def test_nearest_distances():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    np.testing.assert_allclose(nearest_distances(x, x, exclude_self=True), [1, 1, 2])
    np.testing.assert_allclose(nearest_distances(x, x, k=2, exclude_self=True), [3, 2, 3])
    np.testing.assert_allclose(nearest_distances([[0.5, 0.0]], x), [0.5])


def test_bad_arguments():
    c = datasets.ring8_centers()
    with pytest.raises(BrenierError, match="centers"):
        mode_metrics(np.zeros((5, 2)), np.zeros((3, 3)), 0.1)
    with pytest.raises(BrenierError, match="sigma"):
        mode_metrics(c, c, 0.0)
    with pytest.raises(BrenierError, match="quantile"):
        memorisation(c, c, quantile=1.5)
    with pytest.raises(BrenierError, match="samples"):
        mode_metrics(np.array([[np.nan, 0.0]]), c, 0.1)
