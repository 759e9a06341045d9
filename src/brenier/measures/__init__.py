"""Measures: sources μ we sample from (`sources`, `piecewise`) and discrete targets ν (`discrete`)."""

from .discrete import DiscreteMeasure
from .piecewise import GridDensity, UniformPolytope, image_to_values, values_to_image
from .sources import (
    Empirical,
    Gaussian,
    SampleStream,
    SourceMeasure,
    UniformBall,
    UniformCube,
    make_source,
    register_source,
    source_from_dict,
)

__all__ = ["DiscreteMeasure", "Empirical", "Gaussian", "GridDensity", "SampleStream", "SourceMeasure",
           "UniformBall", "UniformCube", "UniformPolytope", "image_to_values", "make_source",
           "register_source", "source_from_dict", "values_to_image"]
