"""One place for input checks: every error names the argument, what was expected and what came."""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # torch is a dependency, but keep validation importable without it
    import torch
except ImportError:  # pragma: no cover
    torch = None

ROWS = 1 << 16  # rows converted, hashed or assigned at once: bounds temporary copies of big arrays


class BrenierError(ValueError):
    """Raised for bad user input; the message names the argument at fault."""


def is_tensor(x: Any) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy(x: Any, name: str) -> np.ndarray:
    """numpy view of an array-like (numpy, torch tensor, nested list)."""
    if x is None:
        raise BrenierError(f"{name}: expected an array, got None")
    if is_tensor(x):
        return x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise BrenierError(f"{name}: could not be read as an array ({exc})") from None
    if arr.dtype == object:
        raise BrenierError(f"{name}: expected a numeric array, got dtype=object")
    return arr


def like(result: np.ndarray, template: Any) -> Any:
    """Return `result` as the same kind (numpy / torch, device) as `template`."""
    if is_tensor(template):
        out = torch.from_numpy(np.ascontiguousarray(result))
        return out.to(template.device)
    return result


def check_points(
    x: Any, name: str, *, dim: int | None = None, min_rows: int = 1, dtype=np.float64
) -> np.ndarray:
    """Validate a point array of shape (n, d): finite, numeric, non-empty, right dimension."""
    arr = to_numpy(x, name)
    if arr.ndim != 2:
        hint = " (for 1-D data pass shape (n, 1))" if arr.ndim == 1 else ""
        raise BrenierError(f"{name}: expected a 2-D array of shape (n, d), got shape {arr.shape}{hint}")
    if arr.shape[0] < min_rows:
        raise BrenierError(f"{name}: expected at least {min_rows} point(s), got {arr.shape[0]}")
    if arr.shape[1] == 0:
        raise BrenierError(f"{name}: points have dimension 0")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise BrenierError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    arr = arr.astype(dtype, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        what = "NaN" if np.isnan(arr).any() else "inf"
        raise BrenierError(f"{name}: contains {what} (first at row {row}); all values must be finite")
    if dim is not None and arr.shape[1] != dim:
        raise BrenierError(f"{name}: expected dimension d={dim}, got d={arr.shape[1]}")
    return arr


def check_weights(w: Any, n: int, name: str = "weights") -> np.ndarray:
    """Validate target weights ν: shape (n,), finite, ≥ 0, positive sum. Returns ν normalised to 1."""
    if w is None:
        return np.full(n, 1.0 / n)
    arr = to_numpy(w, name)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise BrenierError(f"{name}: expected shape ({n},) to match the targets, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise BrenierError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise BrenierError(f"{name}: contains NaN or inf; weights must be finite")
    if (arr < 0).any():
        i = int(np.argmax(arr < 0))
        raise BrenierError(f"{name}: must be >= 0, got {arr[i]!r} at index {i}")
    total = arr.sum()
    if not total > 0:
        raise BrenierError(f"{name}: must have a positive sum, got {total!r}")
    return arr / total


def check_distinct(points: np.ndarray, name: str) -> None:
    """Refuse duplicate points: two identical targets make the cells W_i(h) ill-defined."""
    # rows equal as numbers ⇒ equal 64-bit hash of their bytes (after 0.0 == −0.0); only rows with
    # a shared hash are compared, so memory stays O(N) instead of a sorted copy of the points
    key = np.zeros(len(points), np.uint64)
    for a in range(0, len(points), ROWS):
        words = (np.asarray(points[a:a + ROWS], np.float64) + 0.0).view(np.uint64)  # −0.0 → 0.0
        part = np.zeros(len(words), np.uint64)
        for j in range(words.shape[1]):  # FNV-1a over the row's words (wrap-around product)
            part = (part ^ words[:, j]) * np.uint64(0x100000001B3)
        key[a:a + len(words)] = part
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    for c in np.flatnonzero(counts > 1):
        rows = np.flatnonzero(inverse.reshape(-1) == c)
        for i in rows[:-1]:
            dup = rows[(points[rows] == points[i]).all(axis=1)]
            if len(dup) > 1:
                raise BrenierError(f"{name}: duplicate points at rows {dup[:5].tolist()}; "
                                   "merge them and add their weights")


def check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise BrenierError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def check_positive_float(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BrenierError(f"{name}: expected a positive number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise BrenierError(f"{name}: expected a positive finite number, got {value!r}")
    return v


def check_fraction(value: Any, name: str, *, one: bool) -> float:
    """A number in [0, 1] (one=True) or [0, 1) (one=False)."""
    span = "[0, 1]" if one else "[0, 1)"
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BrenierError(f"{name}: expected a number in {span}, got {value!r}") from None
    if not (0 <= v <= 1 if one else 0 <= v < 1):
        raise BrenierError(f"{name}: expected a number in {span}, got {value!r}")
    return v


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise BrenierError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_images(x: Any, name: str, shape: tuple[int, ...] | None = None, min_rows: int = 1,
                 unit_range: bool = False) -> np.ndarray:
    """Validate images (n, C, H, W) with C ∈ {1, 3} (or (n, H, W), read as C = 1): real, finite,
    non-empty; with `shape` = (C, H, W) exactly that shape; with `unit_range` values in [0, 1].
    Returns float32 (n, C, H, W)."""
    arr = to_numpy(x, name)
    if arr.ndim == 3 and (shape is None or shape[0] == 1):
        arr = arr[:, None]
    if arr.ndim != 4:
        raise BrenierError(f"{name}: expected images of shape (n, C, H, W) or (n, H, W), "
                           f"got shape {arr.shape}")
    numeric = np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
    if not numeric or np.issubdtype(arr.dtype, np.complexfloating):
        raise BrenierError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if arr.shape[0] < min_rows:
        raise BrenierError(f"{name}: expected at least {min_rows} image(s), got {arr.shape[0]}")
    c, h, w = arr.shape[1:]
    if c not in (1, 3):
        hint = " (channels-last? transpose to (n, C, H, W))" if w in (1, 3) else ""
        raise BrenierError(f"{name}: expected 1 or 3 channels (axis 1 of (n, C, H, W)), got C={c}{hint}")
    if h == 0 or w == 0:
        raise BrenierError(f"{name}: images have an empty side, shape {arr.shape}")
    if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
        raise BrenierError(f"{name}: expected images of shape (n, {', '.join(map(str, shape))}) as in "
                           f"training, got {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        what = "NaN" if np.isnan(arr).any() else "inf"
        row = int(np.argwhere(~np.isfinite(arr.reshape(len(arr), -1)))[0][0])
        raise BrenierError(f"{name}: contains {what} (first in image {row}); all pixels must be finite")
    if unit_range:
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise BrenierError(f"{name}: pixel values must lie in [0, 1], got range [{lo:.4g}, {hi:.4g}]; "
                               "rescale the images first")
        arr = np.clip(arr, 0.0, 1.0)
    return arr



def check_fitted(estimator: Any, attribute: str, hint: str = "call fit(...) first") -> None:
    """Raise a BrenierError naming the estimator when its fitted `attribute` is missing."""
    if getattr(estimator, attribute, None) is None:
        raise BrenierError(f"{type(estimator).__name__} is not fitted: {hint}")
