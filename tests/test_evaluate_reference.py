"""Held-out evaluation: metrics against a labelled reference set (e.g. the test split) with a
classifier trained on it, memorisation still against the training images (small synthetic images)."""

import json

import numpy as np
import pytest

from brenier import AEOT
from brenier.analysis.neighbours import nearest_distances
from brenier.datasets import ImageData
from brenier.evaluation import evaluate as ev
from brenier.evaluation.classifier import Classifier, cache_key
from brenier.evaluation.image_metrics import (
    SampleScorer,
    evaluate_samples,
    frechet_distance,
    image_memorisation,
    nearest_image_distances,
    prdc,
)
from brenier.metrics import class_histogram, class_kl, memorisation, mixture_rate
from brenier.validation import BrenierError

SIDE = 12


def patterns(n: int, seed: int, classes=(0, 1, 2), name: str = "bars") -> ImageData:
    """n grey 12×12 images of 3 classes: a horizontal bar, a vertical bar, a filled square, at a
    random place, with a little noise; labels given by `classes`."""
    rng = np.random.default_rng(seed)
    kind = np.arange(n) % 3
    x = np.zeros((n, 1, SIDE, SIDE), np.float32)
    for i, c in enumerate(kind):
        a, b = rng.integers(1, SIDE - 4, 2)
        if c == 0:
            x[i, 0, a:a + 2, 1:SIDE - 1] = 1.0
        elif c == 1:
            x[i, 0, 1:SIDE - 1, b:b + 2] = 1.0
        else:
            x[i, 0, a:a + 4, b:b + 4] = 1.0
    x = np.clip(x + 0.08 * rng.random(x.shape, dtype=np.float32), 0.0, 1.0)
    return ImageData(x, np.asarray(classes)[kind].astype(np.int64), name, (0.0, 1.0), None)


@pytest.fixture(scope="module")
def train():
    return patterns(150, 0, name="bars-train")


@pytest.fixture(scope="module")
def ref():
    return patterns(90, 1, name="bars-ref")


@pytest.fixture(scope="module")
def ref_clf(ref):
    return Classifier(channels=8, feature_dim=16).fit(ref.images, ref.labels, epochs=15, seed=0)


# --------------------------------------------------------------------------- evaluate_samples


def test_classifier_is_trained_on_the_reference(train, ref, tmp_path):
    unlabelled = train._replace(labels=None)  # the training labels are not needed with a reference
    other = patterns(90, 1, classes=(4, 7, 9), name="bars-ref")  # the reference images, other labels
    out = evaluate_samples(ref.images[:40], unlabelled, reference=other, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.safetensors")  # one classifier: the reference's, not the training set's
    assert cache_key(other.images, other.labels, 0) in entry.name and entry.name.startswith("bars-ref-")
    np.testing.assert_array_equal(Classifier.load(entry).classes_, [4, 7, 9])
    assert len(out["class_histogram"]) == 3
    with pytest.raises(BrenierError, match="no labels"):  # without a reference the labels are needed
        evaluate_samples(ref.images[:40], unlabelled, cache_dir=tmp_path)


def test_real_side_is_the_reference(train, ref, ref_clf):
    same = evaluate_samples(ref.images, train, classifier=ref_clf, reference=ref)
    assert same["frechet"] == pytest.approx(0.0, abs=1e-6) and same["class_kl"] < 0.005  # smoothing only
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["density"] == pytest.approx(1.0, abs=0.2)
    # the same images scored against the training images are not identical to the real set
    against_train = evaluate_samples(ref.images, train, classifier=ref_clf)
    assert against_train["frechet"] > 1e-5 and against_train["coverage"] < 1.0


def test_memorisation_stays_against_the_training_images(train, ref, ref_clf):
    copies = evaluate_samples(train.images[:60], train, classifier=ref_clf, reference=ref)
    assert copies["memorisation"] == 1.0
    # the training images as the reference too: still copies of the training images
    as_ref = evaluate_samples(train.images[:60], train, classifier=ref_clf, reference=train)
    assert as_ref["memorisation"] == 1.0 and as_ref["frechet"] < copies["frechet"] + 1.0
    fresh = evaluate_samples(ref.images, train, classifier=ref_clf, reference=ref)
    assert fresh["memorisation"] <= 0.1  # the reference images are no copies of training images


def test_default_is_the_original_definition(train, ref, ref_clf):
    """reference=None: every metric against the training images, as the metric functions define it."""
    x = ref.images[:60]
    out = evaluate_samples(x, train, classifier=ref_clf, seed=2)
    assert out == evaluate_samples(x, train, classifier=ref_clf, seed=2, reference=None)
    f_real, f_fake = ref_clf.features(train.images), ref_clf.features(x)
    p_real, p_fake = ref_clf.predict_proba(train.images), ref_clf.predict_proba(x)
    assert out["frechet"] == frechet_distance(f_real, f_fake)
    assert out["class_kl"] == class_kl(class_histogram(p_fake), class_histogram(p_real))
    assert out["mixture_rate_90"] == mixture_rate(p_fake, 0.9)
    assert {k: out[k] for k in ("precision", "recall", "density", "coverage")} == prdc(f_real, f_fake, k=5)
    flat = train.images.reshape(len(train.images), -1)
    assert out["memorisation"] == memorisation(x.reshape(len(x), -1), flat, seed=2)["near"]
    # one scorer, several sample sets: the same numbers as separate calls
    scorer = SampleScorer(train.images, ref_clf, train.images, seed=2)
    assert scorer(x) == out


def test_bad_reference(train, ref, ref_clf):
    with pytest.raises(BrenierError, match="reference: .*no labels"):
        evaluate_samples(ref.images, train, classifier=ref_clf, reference=ref._replace(labels=None))
    with pytest.raises(BrenierError, match=r"reference: expected images of shape \(n, 1, 12, 12\)"):
        evaluate_samples(ref.images, train, classifier=ref_clf,
                         reference=ImageData(np.zeros((20, 1, 8, 8), np.float32), np.arange(20) % 2))
    with pytest.raises(BrenierError, match="reference: expected an ImageData"):
        evaluate_samples(ref.images, train, classifier=ref_clf, reference=ref.images)
    with pytest.raises(BrenierError, match=r"reference.labels: expected shape \(90,\)"):
        evaluate_samples(ref.images, train, classifier=ref_clf,
                         reference=ref._replace(labels=ref.labels[:-1]))
    with pytest.raises(BrenierError, match="reference: need more than k=5"):
        evaluate_samples(ref.images, train, classifier=ref_clf, reference=patterns(5, 3))


# --------------------------------------------------------------------------- nearest images


@pytest.mark.parametrize("k, exclude_self", [(1, False), (3, False), (1, True), (2, True)])
def test_nearest_image_distances_are_exact(train, ref, k, exclude_self):
    pool = train.images
    q = pool[::3] if exclude_self else ref.images
    expect = nearest_distances(q.reshape(len(q), -1), pool.reshape(len(pool), -1), k=k,
                               exclude_self=exclude_self)
    np.testing.assert_allclose(nearest_image_distances(q, pool, k=k, exclude_self=exclude_self), expect,
                               rtol=1e-9, atol=1e-9)
    # no spare candidates: every row takes the certified fallback, blocks of a few rows
    got = nearest_image_distances(q, pool, k=k, exclude_self=exclude_self, extra=0, block=1000)
    np.testing.assert_allclose(got, expect, rtol=1e-9, atol=1e-9)


def test_image_memorisation_is_the_point_metric(train, ref):
    flat = train.images.reshape(len(train.images), -1)
    half = np.concatenate([train.images[:40], ref.images[:40]])
    for x in (train.images[:50], ref.images, half):
        for seed in (0, 5):
            assert image_memorisation(x, train.images, seed=seed) == memorisation(
                x.reshape(len(x), -1), flat, seed=seed)["near"]
    assert image_memorisation(half, train.images) == pytest.approx(0.5, abs=0.05)


# --------------------------------------------------------------------------- evaluate_model


@pytest.fixture(scope="module")
def model(train):
    return AEOT(2, seed=0, epochs=15, patience=5).fit(train)


def test_evaluate_model_with_reference(model, ref, tmp_path):
    timings = {}
    results, samples = ev.evaluate_model(model, 60, seed=1, reference=ref, cache_dir=tmp_path,
                                         timings=timings)
    assert list(results)[-2:] == [ev.RECONSTRUCTIONS, ev.DATA_ROW] and list(samples) == list(results)
    for name in ev.OT_VARIANTS:
        assert results[name]["n_samples"] == 60
    rec = results[ev.RECONSTRUCTIONS]
    assert rec["n_samples"] == 60 and samples[ev.RECONSTRUCTIONS].shape == (60, 1, SIDE, SIDE)
    assert rec["memorisation"] <= 0.2  # reconstructions of images the autoencoder never saw
    assert rec["seconds"] >= model.fit_info_["autoencoder_seconds"]
    assert results[ev.DATA_ROW]["memorisation"] == 1.0
    (entry,) = tmp_path.glob("*.safetensors")  # the classifier of the reference only
    assert cache_key(ref.images, ref.labels, 0) in entry.name
    assert set(timings) == {"classifier", "generation", "real_side", "evaluation"}
    assert set(timings["evaluation"]) == set(results)
    # more samples than reference images: all of them are reconstructed once
    results, _ = ev.evaluate_model(model, 120, seed=1, reference=ref, cache_dir=tmp_path)
    assert results[ev.RECONSTRUCTIONS]["n_samples"] == len(ref.images)
    assert results[ev.DATA_ROW]["n_samples"] == 120


def test_evaluate_model_default_has_no_reference_rows(model, tmp_path):
    results, samples = ev.evaluate_model(model, 40, seed=0, cache_dir=tmp_path)
    assert list(results) == [*ev.OT_VARIANTS, ev.DATA_ROW] and list(samples) == list(results)
    data = ev.training_data(model)
    clf = Classifier.load(next(tmp_path.glob("*.safetensors")))
    assert results["brenier"] == evaluate_samples(samples["brenier"], data, classifier=clf, seed=0) | {
        "seconds": results["brenier"]["seconds"]}


def test_evaluate_model_reference_needs_no_training_labels(model, ref, ref_clf, monkeypatch):
    monkeypatch.setattr(model, "labels_", None)
    with pytest.raises(BrenierError, match="no labels"):
        ev.evaluate_model(model, 30)
    results, _ = ev.evaluate_model(model, 30, reference=ref, classifier=ref_clf)
    assert ev.RECONSTRUCTIONS in results


def test_evaluate_model_bad_reference(model, ref, ref_clf):
    with pytest.raises(BrenierError, match="reference: .*no labels"):
        ev.evaluate_model(model, 30, reference=ref._replace(labels=None), classifier=ref_clf)
    with pytest.raises(BrenierError, match="reference: expected images of shape"):
        small = ImageData(np.zeros((20, 1, 8, 8), np.float32), np.arange(20) % 2)
        ev.evaluate_model(model, 30, reference=small)
    with pytest.raises(BrenierError, match="reference: pixel values"):
        ev.evaluate_model(model, 30, reference=ref._replace(images=ref.images * 255))
    wide = Classifier(channels=4, feature_dim=4).fit(np.zeros((10, 1, 8, 8), np.float32), np.arange(10) % 2,
                                                     epochs=1)
    with pytest.raises(BrenierError, match="classifier: trained on images of shape"):
        ev.evaluate_model(model, 30, reference=ref, classifier=wide)


def test_baseline_names_and_write_evaluation(tmp_path):
    assert ev.baseline_names(True) == ev.BASELINES and ev.baseline_names(False) == ()
    assert ev.baseline_names(["VAE", "latent DDPM", "VAE"]) == ("VAE", "latent DDPM")
    with pytest.raises(BrenierError, match="baselines: unknown"):
        ev.baseline_names(["GAN"])
    x = {"a": np.zeros((3, 1, 4, 4), np.float32)}
    res = {"z": {"frechet": 1.0}, "a": {"frechet": 2.0}}
    ev.write_evaluation(tmp_path, res, x, n=3, seed=0, reference="fashion-mnist-test")
    doc = json.loads((tmp_path / "evaluation.json").read_text())
    assert doc["reference"] == "fashion-mnist-test" and doc["methods"] == ["z", "a"]
    ev.write_evaluation(tmp_path, {"a": {"frechet": 1.0}}, x, n=3, seed=0)
    assert "reference" not in json.loads((tmp_path / "evaluation.json").read_text())
