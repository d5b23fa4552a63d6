"""Datasets as pixel intensities in [0, 1], and their mapping to input voltages."""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ._validate import check_finite_array, check_positive


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split of images flattened to ``[n, features]`` with values in [0, 1]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = "custom"
    image_shape: tuple[int, int] = (8, 8)

    @property
    def n_features(self) -> int:
        """Inputs per image."""
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of distinct labels."""
        return int(max(self.y_train.max(), self.y_test.max()) + 1)

    @property
    def x_all(self) -> np.ndarray:
        """Training then test images."""
        return np.concatenate([self.x_train, self.x_test])

    @property
    def y_all(self) -> np.ndarray:
        """Training then test labels."""
        return np.concatenate([self.y_train, self.y_test])


def to_voltages(x: np.ndarray, v_read: float = 0.2) -> np.ndarray:
    """Map pixel intensities in [0, 1] linearly to input voltages in [0, v_read] (V)."""
    check_positive("v_read", v_read, "the read voltage in volts, e.g. 0.2")
    return np.asarray(x, dtype=np.float64) * v_read


def load_digits(seed: int = 0, n_test: int = 180) -> Dataset:
    """sklearn's 8x8 handwritten digits, split stratified and seeded, ``n_test`` test images."""
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    x = bunch.data.astype(np.float64) / 16.0
    y = bunch.target.astype(np.int64)
    return split_arrays(x, y, n_test=n_test, seed=seed, name="digits", image_shape=(8, 8))


def split_arrays(
    x: np.ndarray,
    y: np.ndarray,
    n_test: int | float = 0.1,
    seed: int = 0,
    name: str = "custom",
    image_shape: Optional[tuple[int, int]] = None,
) -> Dataset:
    """Stratified, seeded train/test split of user arrays (``x`` in [0, 1], integer labels)."""
    from sklearn.model_selection import train_test_split

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim > 2:
        image_shape = image_shape or tuple(x.shape[1:3])
        x = x.reshape(len(x), -1)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"expected x of shape [n, features] and y of shape [n]; got {x.shape} and {y.shape}")
    check_finite_array("x", x)
    if x.min() < 0 or x.max() > 1:
        raise ValueError(
            f"pixel values must lie in [0, 1] (got {x.min():g}..{x.max():g}); divide by the largest pixel value first"
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError("labels must be non-negative integers (class indices)")
    side = int(round(np.sqrt(x.shape[1])))
    shape = image_shape or ((side, side) if side * side == x.shape[1] else (1, x.shape[1]))
    x_tr, x_te, y_tr, y_te = train_test_split(x, y.astype(np.int64), test_size=n_test, random_state=seed, stratify=y)
    return Dataset(x_tr, y_tr, x_te, y_te, name=name, image_shape=shape)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an MNIST-format IDX file (optionally gzipped) into a NumPy array."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {str(path)!r} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ValueError(f"cannot read IDX file {str(path)!r}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{str(path)!r} is not an IDX file: it must start with two zero bytes (MNIST format)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"{str(path)!r}: unknown IDX data type code 0x{raw[2]:02x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{str(path)!r} is truncated: its header promises {ndim} dimensions")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{str(path)!r} is truncated or corrupt: dimensions {dims} need {expected} bytes of data, found {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def load_idx(
    images_path: str | Path,
    labels_path: str | Path,
    downsample: int = 1,
    n_test: int | float = 0.1,
    seed: int = 0,
    max_images: Optional[int] = None,
) -> Dataset:
    """MNIST-format images and labels from files, block-averaged by ``downsample``, split seeded."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise ValueError(f"images file must hold [n, height, width]; got shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"labels file must hold one label per image ({len(images)}); got shape {labels.shape}")
    if max_images is not None:
        images, labels = images[:max_images], labels[:max_images]
    if not isinstance(downsample, int) or downsample < 1 or images.shape[1] % downsample or images.shape[2] % downsample:
        raise ValueError(
            f"downsample={downsample!r} must be a positive integer dividing the image size {images.shape[1:]} (e.g. 1, 2, 4)"
        )
    n, h, w = images.shape
    x = images.astype(np.float64).reshape(n, h // downsample, downsample, w // downsample, downsample).mean(axis=(2, 4))
    peak = float(x.max()) or 1.0
    return split_arrays(x / peak, labels.astype(np.int64), n_test=n_test, seed=seed, name="idx",
                        image_shape=(h // downsample, w // downsample))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write an array as an IDX file (unsigned bytes for uint8, big-endian otherwise)."""
    codes = {np.dtype(np.uint8): (0x08, ">u1"), np.dtype(np.int32): (0x0C, ">i4"), np.dtype(np.float64): (0x0E, ">f8")}
    array = np.asarray(array)
    if array.dtype not in codes:
        raise ValueError(f"write_idx supports uint8, int32 and float64 arrays, not {array.dtype}")
    code, fmt = codes[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    Path(path).write_bytes(header + array.astype(fmt).tobytes())
