"""Public facade of the evaluation metrics (the modules live in `brenier.evaluation` and
`brenier.analysis.neighbours`); nothing inside brenier imports this module."""

from .analysis.neighbours import nearest_distances
from .evaluation.classifier import Classifier, load_or_train_classifier
from .evaluation.image_metrics import (
    class_histogram,
    class_kl,
    evaluate_samples,
    frechet_distance,
    image_memorisation,
    mixture_rate,
    prdc,
)
from .evaluation.point_metrics import memorisation, mixture_hq, mode_metrics, sliced_wasserstein

__all__ = ["Classifier", "class_histogram", "class_kl", "evaluate_samples", "frechet_distance",
           "image_memorisation", "load_or_train_classifier", "memorisation", "mixture_hq", "mixture_rate",
           "mode_metrics", "nearest_distances", "prdc", "sliced_wasserstein"]
