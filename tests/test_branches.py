"""Branches of a sampled support from the spectrum of its neighbour graph (brenier.ot.singular.branches)."""

import numpy as np
import pytest

from brenier.ot.singular.branches import MAX_BRANCHES, spectral_branches
from brenier.validation import BrenierError


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """a and b group the points the same way (up to the names of the groups)."""
    pairs = {(int(i), int(j)) for i, j in zip(a, b, strict=True)}
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def test_separate_clusters_are_separate_branches():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 120)
    y = rng.normal(size=(360, 6)) * 0.15 + 2.0 * np.eye(6)[labels]
    assert same_partition(spectral_branches(y), labels)


def test_a_thin_seam_splits_two_touching_clusters():
    """Two 6-D clusters joined by a thin line of points: one connected graph, two branches."""
    rng = np.random.default_rng(1)
    e0 = np.eye(6)[0]
    left = rng.normal(size=(200, 6)) * 0.15 - e0
    right = rng.normal(size=(200, 6)) * 0.15 + e0
    seam = np.linspace(-0.6, 0.6, 8)[:, None] * e0
    labels = spectral_branches(np.vstack([left, right, seam]))
    assert len(np.unique(labels)) == 2
    assert len(np.unique(labels[:200])) == 1 and len(np.unique(labels[200:400])) == 1
    assert labels[0] != labels[200]


def test_one_blob_is_one_branch():
    y = np.random.default_rng(2).normal(size=(500, 6))
    np.testing.assert_array_equal(spectral_branches(y), 0)


def test_more_components_than_max_branches_keeps_the_components():
    rng = np.random.default_rng(3)
    parts = np.repeat(np.arange(MAX_BRANCHES + 5), 12)
    y = rng.normal(size=(len(parts), 4)) * 0.01 + 10.0 * rng.normal(size=(MAX_BRANCHES + 5, 4))[parts]
    assert same_partition(spectral_branches(y), parts)


def test_branches_ignore_scale_and_translation():
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(2), 150)
    y = rng.normal(size=(300, 8)) * 0.2 + np.eye(8)[labels]
    assert same_partition(spectral_branches(y), spectral_branches(30.0 * y - 7.0))


def test_bad_input_names_the_argument():
    y = np.random.default_rng(5).normal(size=(50, 6))
    y[3, 2] = np.nan
    with pytest.raises(BrenierError, match="y"):
        spectral_branches(y)
    with pytest.raises(BrenierError, match="k"):
        spectral_branches(np.ones((20, 3)) + np.arange(20)[:, None], k=0)
