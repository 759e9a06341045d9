"""AEOT: autoencoder + latent semi-discrete OT on images (small, fast configurations)."""

import json

import numpy as np
import pytest

from brenier import AEOT, BrenierError
from brenier.datasets import digits

FAST = dict(epochs=40, patience=8)


@pytest.fixture(scope="module")
def small_digits():
    d = digits()
    keep = np.random.default_rng(0).choice(len(d.images), 400, replace=False)
    return d._replace(images=d.images[keep], labels=d.labels[keep])


@pytest.fixture(scope="module")
def model(small_digits):
    return AEOT(2, seed=0, **FAST).fit(small_digits)


def test_fit_and_sample_shapes(model, small_digits):
    assert model.codes_.shape == (400, 2)
    assert model.ot_.converged_
    x = model.sample(50, seed=1)
    assert x.shape == (50, 1, 8, 8)
    assert x.min() >= 0.0 and x.max() <= 1.0
    # the same seed gives the same images, another seed other images
    np.testing.assert_array_equal(x, model.sample(50, seed=1))
    assert not np.allclose(x, model.sample(50, seed=2))
    # the cube source: scrambled Sobol codes by default, i.i.d. ones on request, both seeded
    np.testing.assert_array_equal(x, model.sample(50, seed=1, qmc=True))
    iid = model.sample_codes(50, seed=1, qmc=False)
    np.testing.assert_array_equal(iid, model.sample_codes(50, seed=1, qmc=False))
    assert not np.allclose(iid, model.sample_codes(50, seed=1))
    # the plain map reproduces decoded training codes exactly
    z = model.sample_codes(20, seed=3, extension="none")
    d = np.min(np.linalg.norm(z[:, None, :] - model.codes_[None], axis=2), axis=1)
    assert np.all(d < 1e-9)


def test_generated_codes_stay_in_the_latent_support(model):
    z = model.sample_codes(500, seed=4)
    lo, hi = model.codes_.min(axis=0), model.codes_.max(axis=0)
    span = hi - lo
    assert np.all(z > lo - 0.5 * span) and np.all(z < hi + 0.5 * span)
    # singular-aware samples are closer to training codes than naive interpolation's
    naive = model.sample_codes(500, seed=4, extension="naive")

    def nearest(a):
        return np.min(np.linalg.norm(a[:, None, :] - model.codes_[None], axis=2), axis=1)

    assert np.median(nearest(z)) <= np.median(nearest(naive)) * 1.05


def test_save_load_round_trip(model, tmp_path):
    model.save(tmp_path / "m")
    again = AEOT.load(tmp_path / "m")
    np.testing.assert_array_equal(model.sample(30, seed=5), again.sample(30, seed=5))
    np.testing.assert_allclose(model.encode(model.train_images_[:10]), again.encode(again.train_images_[:10]),
                               atol=1e-6)
    # saving over an existing model replaces it atomically
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "aeot.json", "autoencoder.safetensors", "data.safetensors", "potential.safetensors"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_value_range_and_channel_axis_follow_the_input(small_digits):
    raw = small_digits.images[:, 0] * 255.0  # (n, H, W), values in [0, 255]
    m = AEOT(2, seed=0, **FAST).fit(raw)
    x = m.sample(10, seed=0)
    assert x.shape == (10, 8, 8)
    assert x.max() > 1.5 and x.min() >= 0.0 and x.max() <= 255.0
    assert m.encode(raw[:5]).shape == (5, 2)
    assert m.encode(raw[:5].reshape(5, 64)).shape == (5, 2)  # flattened images are accepted


def test_repeated_images_become_one_weighted_target(small_digits):
    """A data set with repeated images (equal codes) is fitted: each distinct code is one OT
    target carrying its share of the images."""
    images = np.concatenate([small_digits.images, small_digits.images[:50]])
    m = AEOT(2, seed=0, **FAST).fit(images)
    assert m.codes_.shape == (450, 2) and len(m.target_index_) == 400
    np.testing.assert_array_equal(m.target_index_, np.arange(400))
    weights = m.ot_.weights_
    np.testing.assert_allclose(weights[:50], 2 / 450)
    np.testing.assert_allclose(weights[50:], 1 / 450)
    assert m.fit_info_["n_targets"] == 400
    assert m.sample(20, seed=0).shape == (20, 1, 8, 8)


def test_singular_set_and_codes(model):
    sing = model.singular_set()
    assert sing.pairs.shape[1] == 2 and len(sing.pairs) > 0
    across, inside = model.singular_codes(8)
    assert across.shape[1] == inside.shape[1] == 2
    assert len(across) <= 8 and len(inside) <= 8


def test_checkpoint_reuses_the_trained_autoencoder(small_digits, tmp_path):
    a = AEOT(2, seed=1, checkpoint=tmp_path / "ck", **FAST).fit(small_digits)
    assert list((tmp_path / "ck").glob("*/autoencoder.safetensors"))
    b = AEOT(2, seed=1, checkpoint=tmp_path / "ck", **FAST).fit(small_digits)
    np.testing.assert_array_equal(a.codes_, b.codes_)
    np.testing.assert_allclose(a.ot_.heights_, b.ot_.heights_, atol=1e-12)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((20, 8)), "images"),
    (np.full((20, 8, 8), np.nan), "NaN"),
    (np.zeros((3, 8, 8)), "at least 10"),
])
def test_bad_images(bad, match):
    with pytest.raises(BrenierError, match=match):
        AEOT(2, **FAST).fit(bad)


def test_bad_folders(tmp_path):
    import imageio.v3 as iio

    (tmp_path / "empty").mkdir()
    with pytest.raises(BrenierError, match="empty|no image"):
        AEOT(2, **FAST).fit(str(tmp_path / "empty"))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    iio.imwrite(mixed / "a.png", np.zeros((8, 8), np.uint8))
    iio.imwrite(mixed / "b.png", np.zeros((9, 8), np.uint8))
    with pytest.raises(BrenierError, match="a.png|b.png"):
        AEOT(2, **FAST).fit(str(mixed))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"not a png at all")
    with pytest.raises(BrenierError, match="x.png"):
        AEOT(2, **FAST).fit(str(broken))


def test_foreign_and_newer_model_dirs(model, tmp_path):
    with pytest.raises(BrenierError, match="not found|not a model"):
        AEOT.load(tmp_path / "nothing")
    (tmp_path / "other").mkdir()
    with pytest.raises(BrenierError, match="not a brenier AEOT model"):
        AEOT.load(tmp_path / "other")
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "aeot.json").read_text())
    manifest["version"] = 99
    (tmp_path / "m" / "aeot.json").write_text(json.dumps(manifest))
    with pytest.raises(BrenierError, match="another brenier version"):
        AEOT.load(tmp_path / "m")
    manifest["version"], manifest["format"] = 1, "something.else"
    (tmp_path / "m" / "aeot.json").write_text(json.dumps(manifest))
    with pytest.raises(BrenierError, match="not a brenier AEOT model"):
        AEOT.load(tmp_path / "m")


def test_unfitted_and_bad_arguments(model):
    with pytest.raises(BrenierError, match="not fitted"):
        AEOT().sample(3)
    with pytest.raises(BrenierError, match="extension"):
        model.sample(3, extension="smooth")
    with pytest.raises(BrenierError, match="z"):
        model.decode(np.zeros((2, 7)))
    with pytest.raises(BrenierError, match="shape"):
        model.encode(np.zeros((2, 1, 9, 9)))


def test_auto_tolerance_grows_with_the_number_of_targets_and_bad_tol_fails_first():
    """tol='auto' is 2.5e-3 up to 1,000 targets, then 2.5e-3·N/1000, at most 0.05 (the sweep of
    benchmarks/tolerance.py); a bad tol is refused before any training."""
    from brenier.validation import BrenierError

    model = AEOT()
    assert model._ot_tol(500) == pytest.approx(2.5e-3)
    assert model._ot_tol(10_000) == pytest.approx(0.025)
    assert model._ot_tol(60_000) == pytest.approx(0.05)
    assert AEOT(tol=1e-3)._ot_tol(60_000) == pytest.approx(1e-3)
    with pytest.raises(BrenierError, match="tol"):
        AEOT(tol="bogus", epochs=10_000).fit(np.random.default_rng(0).random((20, 8, 8)))
