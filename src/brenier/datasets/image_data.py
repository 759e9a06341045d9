"""The container every image loader returns, and the checks its arrays pass (pixels, value range,
labels)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..validation import BrenierError, is_tensor, to_numpy


class ImageData(NamedTuple):
    """Images (n, C, H, W) float32 with C ∈ {1, 3}, optional int64 labels (n,), and known factors."""

    images: np.ndarray
    labels: np.ndarray | None = None
    name: str = "images"
    value_range: tuple[float, float] = (0.0, 1.0)
    factors: dict[str, np.ndarray] | None = None


def check_image_array(
    x: Any, name: str, value_range: tuple[float, float] | None = None
) -> tuple[np.ndarray, tuple[float, float]]:
    """Validate rank, size, dtype, channels and finiteness; return float32 (n, C, H, W) and its range.

    Without a given `value_range`: uint8 → /255 and uint16 → /65535 with range (0, 1); other arrays keep
    their values, with range (0, 1) if they lie in [0, 1], else (min, max).
    """
    if is_tensor(x) and x.is_floating_point() and x.dtype.itemsize < 4:
        x = x.float()  # float16 / bfloat16 tensors have no (or a lossy) numpy view
    arr = to_numpy(x, name)
    if arr.ndim not in (3, 4):
        hint = ""
        if arr.ndim == 2:
            hint = " (flattened images? reshape them to (n, H, W))"
        elif arr.ndim == 1:
            hint = " (a single flattened image? images need a leading n axis)"
        raise BrenierError(
            f"{name}: expected an array of shape (n, H, W) or (n, C, H, W), got shape {arr.shape}{hint}"
        )
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise BrenierError(f"{name}: expected real pixel values, got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.shape[0] == 0:
        raise BrenierError(f"{name}: contains no images (n = 0)")
    n, c, h, w = arr.shape
    if c not in (1, 3):
        hint = ""
        if w in (1, 3):
            hint = "; it looks channels-last (n, H, W, C): pass x.transpose(0, 3, 1, 2)"
        raise BrenierError(
            f"{name}: expected 1 (grey) or 3 (RGB) channels on axis 1 of (n, C, H, W), got shape "
            f"{arr.shape}{hint}"
        )
    if h == 0 or w == 0:
        raise BrenierError(f"{name}: images have zero size (H, W) = ({h}, {w})")
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(arr.dtype)
    with np.errstate(over="ignore"):  # overflow to inf is reported below
        out = arr.astype(np.float32)
    if scale is not None:
        out /= np.float32(scale)
    bad = ~np.isfinite(out)
    if bad.any():
        first = int(np.argmax(bad.reshape(n, -1).any(axis=1)))
        what = "NaN" if np.isnan(out).any() else "inf (or values too large for float32)"
        raise BrenierError(f"{name}: contains {what} (first in image {first}); pixels must be finite")
    if value_range is None:
        lo, hi = float(out.min()), float(out.max())
        if lo >= 0.0 and hi <= 1.0:
            value_range = (0.0, 1.0)
        elif lo == hi:
            raise BrenierError(f"{name}: every pixel equals {lo!r}, so there is no value range to learn")
        else:
            value_range = (lo, hi)
    else:
        value_range = check_value_range(value_range, name)
    return out, value_range


def check_value_range(value_range: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise BrenierError(f"{name}: value_range must be a pair (lo, hi), got {value_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise BrenierError(f"{name}: value_range must be finite with lo < hi, got {value_range!r}")
    return lo, hi


def check_image_labels(labels: Any, n: int, name: str) -> np.ndarray | None:
    """Labels: None or non-negative integers, one per image; returned as int64 (n,)."""
    if labels is None:
        return None
    arr = to_numpy(labels, name)
    if arr.ndim != 1:
        raise BrenierError(f"{name}: expected a 1-D array of class ids, got shape {arr.shape}")
    if len(arr) != n:
        raise BrenierError(f"{name}: expected one label per image ({n}), got {len(arr)}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise BrenierError(f"{name}: expected integer class ids, got dtype {arr.dtype}")
    whole = np.issubdtype(arr.dtype, np.integer) or (np.isfinite(arr).all() and (arr == np.round(arr)).all())
    if not whole:
        raise BrenierError(f"{name}: expected integer class ids, got non-integer values")
    if (arr < 0).any():
        raise BrenierError(f"{name}: class ids must be >= 0, got {arr.min()!r}")
    return arr.astype(np.int64)
