"""Built-in data: the 2-D mixture benchmarks (ring-8, grid-25) and planar shapes for pictures."""

from .mixtures import Mixture, gaussian_mixture, grid25, grid25_centers, ring8, ring8_centers
from .planar import (
    crescent,
    crescent_contains,
    disc,
    disc_contains,
    dumbbell,
    dumbbell_contains,
    two_moons,
    two_moons_contains,
)

# isort: split
# `datasets.shapes` is the image generator (planar regions live in `datasets.planar`)
from .idx import fashion_mnist, load_idx_images, read_idx, write_idx
from .image_data import ImageData
from .images import as_images, digits, load_images, shapes

__all__ = ["Mixture", "crescent", "crescent_contains", "disc", "disc_contains", "dumbbell",
           "dumbbell_contains", "gaussian_mixture", "grid25", "grid25_centers", "ring8",
           "ring8_centers", "two_moons", "two_moons_contains",
           "ImageData", "as_images", "digits", "fashion_mnist", "load_idx_images", "load_images",
           "read_idx", "shapes", "write_idx"]
