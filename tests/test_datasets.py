"""Built-in data: the PacGAN mixtures and the planar shapes."""

import numpy as np
import pytest

from brenier import datasets
from brenier.validation import BrenierError


def test_ring8_definition():
    mix = datasets.ring8(4000, seed=0)
    x, c, s = mix  # unpacks as (points, centers, sigma)
    assert x.shape == (4000, 2) and c.shape == (8, 2) and s == 0.01
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0)
    np.testing.assert_allclose(c[1], [np.cos(np.pi / 4), np.sin(np.pi / 4)])
    d = np.linalg.norm(x[:, None] - c[None], axis=2)
    near = d.argmin(1)
    assert np.bincount(near, minlength=8).min() > 400  # modes drawn uniformly
    resid = x - c[near]
    assert resid.std() == pytest.approx(0.01, rel=0.05)


def test_grid25_definition():
    mix = datasets.grid25(5000, seed=1)
    assert mix.sigma == 0.05 and mix.centers.shape == (25, 2)
    assert set(np.unique(mix.centers)) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    near = np.linalg.norm(mix.points[:, None] - mix.centers[None], axis=2).argmin(1)
    assert len(np.unique(near)) == 25
    assert (mix.points - mix.centers[near]).std() == pytest.approx(0.05, rel=0.05)


def test_seeded():
    np.testing.assert_array_equal(datasets.grid25(100, seed=3).points, datasets.grid25(100, seed=3).points)
    assert not np.allclose(datasets.ring8(100, seed=3).points, datasets.ring8(100, seed=4).points)
    np.testing.assert_array_equal(datasets.crescent(50, seed=2), datasets.crescent(50, seed=2))


@pytest.mark.parametrize("name", ["disc", "crescent", "two_moons", "dumbbell"])
def test_shapes_sample_inside_their_region(name):
    x = getattr(datasets, name)(3000, seed=0)
    inside = getattr(datasets, f"{name}_contains")(x)
    assert x.shape == (3000, 2) and inside.all()


def test_shapes_are_uniform_and_non_convex():
    x = datasets.disc(20000, seed=0)
    # uniform on the unit disc: P(|x| ≤ 1/2) = 1/4
    assert np.mean(np.linalg.norm(x, axis=1) <= 0.5) == pytest.approx(0.25, abs=0.01)
    c = datasets.crescent(4000, seed=0)
    mid = 0.5 * (c[:2000] + c[2000:])  # midpoints of random pairs leave the region: non-convex
    assert np.mean(~datasets.crescent_contains(mid)) > 0.05
    m = datasets.two_moons(4000, seed=0)
    upper = datasets.two_moons_contains(m) & (np.abs(np.hypot(m[:, 0], m[:, 1]) - 1) <= 0.15) & (m[:, 1] >= 0)
    lower = m[~upper]
    gap = np.min(np.linalg.norm(m[upper][:, None] - lower[None, ::4], axis=2))
    assert gap > 0.3  # the two moons do not touch


def test_bad_arguments():
    with pytest.raises(BrenierError, match="n"):
        datasets.ring8(0)
    with pytest.raises(BrenierError, match="sigma"):
        datasets.grid25(10, sigma=-1)
    with pytest.raises(BrenierError, match="width"):
        datasets.two_moons(10, width=0.9)
