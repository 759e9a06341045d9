"""Image evaluation without downloaded weights: the data's own CNN classifier and the metrics on it."""

import os

import numpy as np
import pytest
import torch

from brenier.datasets import ImageData, digits
from brenier.evaluation.classifier import Classifier, cache_key, load_or_train_classifier
from brenier.metrics import (
    class_histogram,
    class_kl,
    evaluate_samples,
    frechet_distance,
    image_memorisation,
    memorisation,
    mixture_rate,
    prdc,
)
from brenier.validation import BrenierError

N_TRAIN = 1200  # digits split: the classifier and the "training set" use the first rows, the rest is held out


@pytest.fixture(scope="module")
def data():
    return digits()


@pytest.fixture(scope="module")
def split(data):
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.images))
    tr, ho = order[:N_TRAIN], order[N_TRAIN:]
    train = ImageData(data.images[tr], data.labels[tr], "digits-train", (0.0, 1.0), None)
    return train, data.images[ho], data.labels[ho]


@pytest.fixture(scope="module")
def clf(split):
    train, _, _ = split
    return Classifier().fit(train.images, train.labels, epochs=8, seed=0)


def _small(data, n=150, name="digits-small"):
    return ImageData(data.images[:n], data.labels[:n], name, (0.0, 1.0), None)


# --------------------------------------------------------------------------- classifier


def test_classifier_learns_digits(clf, split):
    _, held_x, held_y = split
    assert clf.accuracy_ >= 0.9  # its own held-out split
    assert clf.accuracy(held_x, held_y) >= 0.9  # images it never saw
    p = clf.predict_proba(held_x)
    assert p.shape == (len(held_x), 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert clf.features(held_x[:7]).shape == (7, clf.feature_dim)
    assert 0.1 < clf.temperature_ < 10
    assert clf.history_["train"][-1] < clf.history_["train"][0]


def test_classifier_is_deterministic_and_keeps_global_rng(data):
    small = _small(data, 400)
    state = torch.random.get_rng_state()
    a = Classifier().fit(small.images, small.labels, epochs=3, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())
    b = Classifier().fit(small.images, small.labels, epochs=3, seed=1)
    c = Classifier().fit(small.images, small.labels, epochs=3, seed=2)
    pa, pb, pc = (m.predict_proba(data.images[400:600]) for m in (a, b, c))
    np.testing.assert_array_equal(pa, pb)
    assert not np.allclose(pa, pc)


@pytest.mark.parametrize("shape", [(3, 5, 7), (1, 1, 3), (3, 32, 32)])
def test_classifier_takes_any_size_and_colour(shape):
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 2
    images = rng.uniform(size=(40, *shape)).astype(np.float32) * 0.5 + 0.5 * labels[:, None, None, None]
    model = Classifier(channels=8, feature_dim=8).fit(images, labels, epochs=30, batch_size=16)
    assert model.predict_proba(images).shape == (40, 2) and model.features(images).shape == (40, 8)
    assert model.accuracy(images, labels) > 0.9  # bright vs dark: trivially separable


def test_features_and_proba_in_one_pass(clf, split):
    _, held_x, _ = split
    f, p = clf.features_and_proba(held_x)
    np.testing.assert_array_equal(f, clf.features(held_x))  # the same numbers, bit for bit
    np.testing.assert_array_equal(p, clf.predict_proba(held_x))


def test_save_load_round_trip(clf, split, tmp_path):
    _, held_x, _ = split
    path = tmp_path / "clf.safetensors"
    clf.save(path)
    back = Classifier.load(path)
    np.testing.assert_array_equal(back.predict_proba(held_x), clf.predict_proba(held_x))
    np.testing.assert_array_equal(back.features(held_x), clf.features(held_x))
    assert back.accuracy_ == clf.accuracy_ and back.temperature_ == clf.temperature_
    np.testing.assert_array_equal(back.classes_, np.arange(10))
    foreign = tmp_path / "x.safetensors"
    from brenier.io import save_tensors

    save_tensors(foreign, {"a": np.zeros(3)}, fmt="brenier.other", version=1, meta={})
    with pytest.raises(BrenierError, match="not a brenier.classifier"):
        Classifier.load(foreign)


def test_cache_hit_and_corrupt_recovery(data, tmp_path, monkeypatch):
    small = _small(data)
    first = load_or_train_classifier(small, cache_dir=tmp_path, seed=0)
    files = list(tmp_path.glob("*.safetensors"))
    assert len(files) == 1 and cache_key(small.images, small.labels, 0) in files[0].name

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been used")

    with monkeypatch.context() as m:
        m.setattr(Classifier, "fit", no_training)
        again = load_or_train_classifier(small, cache_dir=tmp_path, seed=0)
    probe = data.images[300:400]  # not in `small`
    np.testing.assert_array_equal(again.predict_proba(probe), first.predict_proba(probe))

    # other seed or other data → another entry
    load_or_train_classifier(small, cache_dir=tmp_path, seed=1)
    assert len(list(tmp_path.glob("*.safetensors"))) == 2

    files[0].write_bytes(b"garbage, not safetensors")
    with pytest.warns(UserWarning, match="retraining"):
        fixed = load_or_train_classifier(small, cache_dir=tmp_path, seed=0)
    np.testing.assert_array_equal(fixed.predict_proba(probe), first.predict_proba(probe))
    assert Classifier.load(files[0]).accuracy_ == first.accuracy_  # overwritten with a good file
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]  # atomic writes leave no debris


def test_cache_dir_from_environment(data, tmp_path, monkeypatch):
    monkeypatch.setenv("BRENIER_CACHE", str(tmp_path))
    small = _small(data, 60, name="tiny/../set")
    load_or_train_classifier(small)
    (entry,) = (tmp_path / "classifiers").iterdir()
    assert entry.name.startswith("tiny_.._set-") and entry.suffix == ".safetensors"


def test_classifier_bad_inputs(data, clf):
    with pytest.raises(BrenierError, match="no labels"):
        load_or_train_classifier(ImageData(data.images, None, "digits", (0.0, 1.0), None))
    with pytest.raises(BrenierError, match="data: expected an ImageData"):
        load_or_train_classifier(data.images)
    with pytest.raises(BrenierError, match="labels: expected shape"):
        Classifier().fit(data.images, data.labels[:-1])
    with pytest.raises(BrenierError, match="at least 2 classes"):
        Classifier().fit(data.images[:10], np.zeros(10, int))
    bad = data.images[:5].copy()
    bad[2, 0, 3, 3] = np.nan
    with pytest.raises(BrenierError, match="images: contains NaN"):
        clf.predict_proba(bad)
    with pytest.raises(BrenierError, match=r"images: expected images of shape \(n, 1, 8, 8\)"):
        clf.features(np.zeros((3, 1, 9, 9), np.float32))
    with pytest.raises(BrenierError, match="channels"):
        Classifier().fit(np.zeros((4, 2, 8, 8)), np.arange(4))
    with pytest.raises(BrenierError, match="not fitted"):
        Classifier().predict_proba(data.images[:3])
    assert clf.predict_proba(data.images[:3, 0]).shape == (3, 10)  # (n, H, W) reads as one channel


# --------------------------------------------------------------------------- Fréchet distance


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    t = np.array([1.0, 2.0, 0.0, 0.0])
    assert frechet_distance(a, a + t) == pytest.approx(5.0, rel=1e-6)  # same covariance: |Δμ|²
    d = [frechet_distance(a, a + s) for s in (0.25, 0.5, 1.0, 2.0)]
    assert all(x < y for x, y in zip(d, d[1:], strict=False))
    # scaling the spread: Gaussians N(0, I) vs N(0, 4I) in 4-D have d² = 4·(1 + 4 − 2·2) = 4
    b = rng.normal(size=(4000, 4))
    assert frechet_distance(b, 2 * rng.normal(size=(4000, 4))) == pytest.approx(4.0, rel=0.1)
    # fewer samples than dimensions: singular covariances still give a finite number
    assert np.isfinite(frechet_distance(rng.normal(size=(5, 30)), rng.normal(size=(6, 30))))
    with pytest.raises(BrenierError, match="feat_b: expected dimension"):
        frechet_distance(a, a[:, :3])
    with pytest.raises(BrenierError, match="feat_a: expected at least 2"):
        frechet_distance(a[:1], a)


def test_frechet_in_classifier_features(clf, split):
    train, held_x, _ = split
    f_train, f_held = clf.features(train.images), clf.features(held_x)
    same = frechet_distance(f_train, f_held)
    shifted = frechet_distance(f_train, clf.features(np.roll(held_x, 2, axis=3)))
    noise = np.random.default_rng(0).uniform(size=held_x.shape).astype(np.float32)
    assert same < shifted < frechet_distance(f_train, clf.features(noise))
    assert shifted > 5 * same


# --------------------------------------------------------------------------- class statistics


def test_class_histogram_and_kl(clf, split):
    train, held_x, held_y = split
    p_data = clf.predict_proba(train.images)
    h = class_histogram(p_data)
    assert h.shape == (10,) and h.sum() == pytest.approx(1.0) and (h > 0.08).all()
    assert class_kl(p_data, p_data) == pytest.approx(0.0, abs=1e-6)
    assert class_kl(clf.predict_proba(held_x), p_data) < 0.02
    threes = clf.predict_proba(held_x[held_y == 3])
    assert class_kl(threes, p_data) > 1.5
    # exact value with the documented smoothing: data uniform over K = 4, generated all in class 0
    s, k = 1e-3, 4
    g0, g_missing = (1 + s) / (1 + k * s), s / (1 + k * s)
    expect = 0.25 * np.log(0.25 / g0) + 0.75 * np.log(0.25 / g_missing)
    assert class_kl([1, 0, 0, 0], np.full(4, 0.25)) == pytest.approx(expect)
    with pytest.raises(BrenierError, match="different numbers of classes"):
        class_kl(np.ones(3), np.ones(4))
    with pytest.raises(BrenierError, match="probs: expected class probabilities"):
        class_histogram(np.ones((3, 4)))


def test_mixture_rate_flags_blends_of_two_digits(clf, split):
    _, held_x, held_y = split
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(held_x), (2, 1500))
    keep = held_y[i] != held_y[j]
    blends = 0.5 * (held_x[i[keep]] + held_x[j[keep]])  # Gu's mode mixture in pixel space
    p_real, p_blend = clf.predict_proba(held_x), clf.predict_proba(blends)
    assert mixture_rate(p_real, 0.5) <= 0.01
    assert mixture_rate(p_real, 0.9) < 0.1
    assert mixture_rate(p_blend, 0.9) > 0.4
    assert mixture_rate(p_blend, 0.5) > 5 * max(mixture_rate(p_real, 0.5), 0.01)
    assert mixture_rate(np.array([[0.5, 0.5], [0.9, 0.1]]), 0.6) == 0.5
    with pytest.raises(BrenierError, match="threshold"):
        mixture_rate(p_real, 1.5)


# --------------------------------------------------------------------------- PRDC


def test_prdc_on_vectors():
    rng = np.random.default_rng(0)
    real, fresh = rng.normal(size=(1000, 3)), rng.normal(size=(1000, 3))
    m = prdc(real, fresh, k=5)
    assert m["precision"] > 0.9 and m["recall"] > 0.9 and m["coverage"] > 0.9
    assert m["density"] == pytest.approx(1.0, abs=0.15)
    far = prdc(real, rng.normal(size=(500, 3)) + 20.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # a collapsed generator: sharp (all inside the data) but covering little of it
    collapsed = prdc(real, 0.05 * rng.normal(size=(1000, 3)))
    assert collapsed["precision"] > 0.95 and collapsed["coverage"] < 0.2 and collapsed["recall"] < 0.2
    # definitions by hand on a tiny case (k = 1): real balls have radius 1, fake balls radius 0.1
    real1 = np.array([[0.0], [1.0], [2.0]])
    fake1 = np.array([[0.5], [0.6], [2.05], [2.3]])  # fake radii 0.1, 0.1, 0.25, 0.25
    assert prdc(real1, fake1, k=1) == pytest.approx(
        {"precision": 1.0, "recall": 1 / 3, "density": 6 / 4, "coverage": 1.0})
    assert prdc(real1, np.array([[0.5], [0.6], [5.0]]), k=1) == pytest.approx(  # 5.0's ball reaches 1, 2
        {"precision": 2 / 3, "recall": 2 / 3, "density": 4 / 3, "coverage": 2 / 3})
    with pytest.raises(BrenierError, match="more than k=5"):
        prdc(real, fresh[:5])
    assert prdc(real, fresh, chunk=7) == m  # the blocks only bound the memory


def test_prdc_in_classifier_features(clf, split):
    train, held_x, _ = split
    f_train = clf.features(train.images)
    m = prdc(f_train, clf.features(held_x))
    # coverage of a fresh set of M fakes against N reals is ≈ 1 − (N / (N + M))^k ≈ 0.87 here
    assert m["precision"] > 0.9 and m["recall"] > 0.9 and m["coverage"] > 0.8
    noise = np.random.default_rng(0).uniform(size=held_x.shape).astype(np.float32)
    n = prdc(f_train, clf.features(noise))
    # out-of-data images can fall into the big k-NN balls of outliers (precision is not robust to
    # them, Naeem et al.); density and coverage are
    assert n["density"] < 0.4 and n["coverage"] < 0.2 and n["recall"] < 0.3


# --------------------------------------------------------------------------- memorisation


def test_image_memorisation(split):
    train, held_x, _ = split
    assert image_memorisation(train.images[:300], train.images) == 1.0
    assert image_memorisation(held_x, train.images) < 0.05
    half = np.concatenate([train.images[:200], held_x[:200]])
    assert image_memorisation(half, train.images) == pytest.approx(0.5, abs=0.05)
    with pytest.raises(BrenierError, match=r"samples: expected images of shape \(n, 1, 8, 8\)"):
        image_memorisation(np.zeros((4, 1, 4, 4)), train.images)
    # the exact, faster nearest-image search gives the point metric's numbers
    flat = train.images.reshape(len(train.images), -1)
    for x in (held_x, half, 0.5 * (held_x[:290] + held_x[290:580])):
        expect = memorisation(x.reshape(len(x), -1), flat, seed=0)["near"]
        assert image_memorisation(x, train.images) == expect


# --------------------------------------------------------------------------- everything at once


KEYS = {"frechet", "class_kl", "class_histogram", "mixture_rate_50", "mixture_rate_90", "precision",
        "recall", "density", "coverage", "memorisation", "n_samples"}


def test_evaluate_samples(clf, split):
    train, held_x, _ = split
    fresh = evaluate_samples(held_x, train, classifier=clf)
    assert set(fresh) == KEYS
    assert fresh["n_samples"] == len(held_x) and len(fresh["class_histogram"]) == 10
    assert all(isinstance(fresh[k], float) for k in KEYS - {"class_histogram", "n_samples"})
    assert fresh["class_kl"] < 0.02 and fresh["mixture_rate_50"] <= 0.01
    assert fresh["precision"] > 0.9 and fresh["coverage"] > 0.8 and fresh["memorisation"] < 0.05
    copies = evaluate_samples(train.images[:500], train, classifier=clf)
    assert copies["memorisation"] == 1.0
    rng = np.random.default_rng(1)
    i, j = rng.integers(0, len(held_x), (2, 500))
    blends = evaluate_samples(0.5 * (held_x[i] + held_x[j]), train, classifier=clf)
    assert blends["mixture_rate_90"] > fresh["mixture_rate_90"] + 0.2
    assert blends["frechet"] > 3 * fresh["frechet"]
    assert blends["density"] < fresh["density"]


def test_evaluate_samples_bad_inputs(clf, split):
    train, held_x, _ = split
    with pytest.raises(BrenierError, match=r"samples: expected images of shape \(n, 1, 8, 8\)"):
        evaluate_samples(np.zeros((50, 1, 16, 16), np.float32), train, classifier=clf)
    nan = held_x[:50].copy()
    nan[7, 0, 0, 0] = np.nan
    with pytest.raises(BrenierError, match="samples: contains NaN"):
        evaluate_samples(nan, train, classifier=clf)
    with pytest.raises(BrenierError, match="need more than k=5"):
        evaluate_samples(held_x[:5], train, classifier=clf)
    with pytest.raises(BrenierError, match="no labels"):
        evaluate_samples(held_x, ImageData(train.images, None, "digits", (0.0, 1.0), None))
    other = ImageData(np.zeros((20, 1, 16, 16), np.float32), np.arange(20) % 2, "big", (0.0, 1.0), None)
    with pytest.raises(BrenierError, match="classifier: trained on images of shape"):
        evaluate_samples(np.zeros((20, 1, 16, 16), np.float32), other, classifier=clf)
