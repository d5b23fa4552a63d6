"""Datasets as pixel intensities in [0, 1], and their mapping to input voltages."""

from __future__ import annotations

import dataclasses
import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ._validate import check_finite_array, check_positive
from .stats import paired_accuracy_comparison, wilson_interval, with_ci

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # where Debian's dataset-fashion-mnist puts it
FASHION_MNIST_ENV = "NEURODTCO_FASHION_MNIST_DIR"
# MNIST's file names, each found as it is or gzipped (".gz" added).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte",
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/test (and optionally validation) images flattened to ``[n, features]`` with values in [0, 1]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = "custom"
    image_shape: tuple[int, int] = (8, 8)
    x_val: Optional[np.ndarray] = None
    y_val: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        if (self.x_val is None) != (self.y_val is None):
            raise ValueError("x_val and y_val come together: give both (a validation part) or neither")

    @property
    def n_features(self) -> int:
        """Inputs per image."""
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of distinct labels."""
        parts = [self.y_train, self.y_test] + ([self.y_val] if self.y_val is not None else [])
        return int(max(int(y.max()) for y in parts) + 1)

    @property
    def has_validation(self) -> bool:
        """Whether a validation part, disjoint from training and test, is held."""
        return self.x_val is not None

    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        """The validation images and labels (for every choice; the test part is for reporting only)."""
        if self.x_val is None or self.y_val is None:
            raise ValueError(
                f"dataset {self.name!r} has no validation part: hold one out of its training images with "
                "split_validation(dataset, n_validation, seed), or load a dataset that has one "
                "(fashion-mnist, a folder of IDX files, a .npz holding x_val and y_val)"
            )
        return self.x_val, self.y_val

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


def load_digits(seed: int = 0, n_test: Optional[int] = None, n_validation: Optional[int | float] = None,
                fold: Optional[int] = None, n_folds: int = 10) -> Dataset:
    """sklearn's 8x8 handwritten digits, split stratified and seeded (``n_test`` test images, 180 by default).

    ``fold=i`` makes the i-th of ``n_folds`` stratified folds the test part instead, so that the
    folds' test parts partition all 1,797 images; ``n_validation`` (a count or a fraction) holds a
    validation part out of what is not test. Without these options the split is the one the cached
    default network was trained on.
    """
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    x = bunch.data.astype(np.float64) / 16.0
    y = bunch.target.astype(np.int64)
    return split_arrays(x, y, n_test=n_test if n_test is not None or fold is not None else 180, seed=seed,
                        name="digits", image_shape=(8, 8), n_validation=n_validation, fold=fold, n_folds=n_folds)


def load_fashion_mnist(n_validation: int | float = 5000, seed: int = 0, directory: str | Path | None = None) -> Dataset:
    """Fashion-MNIST: 60,000 training images less a stratified, seeded validation part, and the 10,000 test images."""
    if directory is None:
        directory = os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR
    hint = f"install them with `apt-get install dataset-fashion-mnist` (into {FASHION_MNIST_DIR}), " \
           f"or set ${FASHION_MNIST_ENV} to a folder that holds them"
    return _load_idx_folder(Path(directory), n_validation, seed, "fashion-mnist", hint)


def load_idx_folder(directory: str | Path, n_validation: int | float = 1 / 12, seed: int = 0,
                    name: Optional[str] = None) -> Dataset:
    """A folder of MNIST-style IDX files: its train and t10k parts, a validation part held out of training.

    ``n_validation`` is a count or a fraction of the training images (1/12: 5,000 of MNIST's 60,000).
    """
    directory = Path(directory)
    hint = "name them as MNIST does (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, " \
           "t10k-labels-idx1-ubyte; each may be gzipped, ending .gz)"
    return _load_idx_folder(directory, n_validation, seed, name or directory.name, hint)


def _load_idx_folder(directory: Path, n_validation: int | float, seed: int, name: str, hint: str) -> Dataset:
    """The official train/test parts of an IDX folder, with a stratified validation part held out of training."""
    paths, missing = {}, []
    for part, stem in IDX_FILES.items():
        found = [p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()]
        if found:
            paths[part] = found[0]
        else:
            missing.append(stem)
    if missing:
        raise FileNotFoundError(f"no {', '.join(missing)} (nor .gz) in the folder {str(directory)!r}: {hint}")
    train_images, train_labels = _read_idx_pair(paths["train_images"], paths["train_labels"])
    test_images, test_labels = _read_idx_pair(paths["test_images"], paths["test_labels"])
    if test_images.shape[1:] != train_images.shape[1:]:
        raise ValueError(f"{str(directory)!r}: the test images are {test_images.shape[1:]} pixels, "
                         f"the training images {train_images.shape[1:]}; both parts must have one image size")
    keep, held = _stratified_holdout(train_labels, n_validation, seed)
    # The pixels stay bytes until each part is cut out, so that no full-size float copy is made twice.
    return Dataset(
        _unit_pixels(train_images[keep]), train_labels[keep], _unit_pixels(test_images), test_labels,
        name=name, image_shape=(int(train_images.shape[1]), int(train_images.shape[2])),
        x_val=_unit_pixels(train_images[held]), y_val=train_labels[held],
    )


def _read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[n, height, width]`` of unsigned bytes and their ``n`` labels as int64."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{str(images_path)!r} must hold [n, height, width] unsigned bytes as MNIST does; "
                         f"got shape {images.shape} of {images.dtype}")
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{str(labels_path)!r} must hold one integer label per image ({len(images)}); "
                         f"got shape {labels.shape} of {labels.dtype}")
    return images, labels.astype(np.int64)


def _unit_pixels(images: np.ndarray) -> np.ndarray:
    """Byte images ``[n, h, w]`` as float64 ``[n, h * w]`` in [0, 1], made in one allocation."""
    x = images.reshape(len(images), -1).astype(np.float64)
    x /= 255.0
    return x


def _stratified_holdout(labels: np.ndarray, n_held: int | float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of the kept part and of a stratified, seeded held-out part of ``n_held`` (count or fraction)."""
    from sklearn.model_selection import train_test_split

    n, n_classes = len(labels), len(np.unique(labels))
    try:
        keep, held = train_test_split(np.arange(n), test_size=n_held, random_state=seed, stratify=labels)
    except ValueError as exc:
        raise ValueError(
            f"n_validation={n_held!r} is not accepted for {n} training images in {n_classes} classes: give a count "
            f"from {n_classes} (one per class) to {n - n_classes}, or a fraction in (0, 1) ({exc})"
        ) from None
    return np.sort(keep), np.sort(held)


def split_validation(dataset: Dataset, n_validation: int | float, seed: int = 0) -> Dataset:
    """The dataset with a stratified, seeded validation part held out of its training images.

    The name gains ``-val<count>``: the training part shrank, so a network cached under the old
    name (trained on the validation images too) must not be taken for one trained on this split.
    """
    keep, held = _stratified_holdout(dataset.y_train, n_validation, seed)
    return dataclasses.replace(dataset, x_train=dataset.x_train[keep], y_train=dataset.y_train[keep],
                               x_val=dataset.x_train[held], y_val=dataset.y_train[held],
                               name=f"{dataset.name}-val{len(held)}")


def load_npz(path: str | Path, name: Optional[str] = None) -> Dataset:
    """A ``.npz`` holding ``x_train, y_train, x_test, y_test`` (and optionally ``x_val, y_val``), pixels in [0, 1]."""
    path = Path(path)
    with np.load(path) as archive:
        missing = [key for key in NPZ_KEYS if key not in archive.files]
        if missing:
            raise ValueError(f"{str(path)!r} lacks {', '.join(missing)}: a dataset .npz holds "
                             f"{', '.join(NPZ_KEYS)} (and optionally x_val, y_val); it has {', '.join(archive.files)}")
        if ("x_val" in archive.files) != ("y_val" in archive.files):
            raise ValueError(f"{str(path)!r} holds only one of x_val and y_val: store both or neither")
        arrays = {key: archive[key] for key in (*NPZ_KEYS, "x_val", "y_val") if key in archive.files}
    parts: dict[str, np.ndarray] = {}
    parts["x_train"], parts["y_train"], shape = _checked_part(arrays["x_train"], arrays["y_train"], f"{path.name}: x_train")
    for part in ("test", "val"):
        if f"x_{part}" in arrays:
            parts[f"x_{part}"], parts[f"y_{part}"], _ = _checked_part(
                arrays[f"x_{part}"], arrays[f"y_{part}"], f"{path.name}: x_{part}", shape)
    return Dataset(**parts, name=name or path.stem, image_shape=shape)


def _checked_part(x: np.ndarray, y: np.ndarray, what: str,
                  image_shape: Optional[tuple[int, int]] = None) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Images flattened to float64 ``[n, features]`` in [0, 1], integer labels, and the image shape."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim > 2:
        image_shape = image_shape or (int(x.shape[1]), int(np.prod(x.shape[2:])))
        x = x.reshape(len(x), -1)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{what}: expected x of shape [n, features] and y of shape [n]; got {x.shape} and {y.shape}")
    check_finite_array(what, x)
    if x.min() < 0 or x.max() > 1:
        raise ValueError(
            f"{what}: pixel values must lie in [0, 1] (got {x.min():g}..{x.max():g}); divide by the largest pixel value first"
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"{what}: labels must be non-negative integers (class indices)")
    side = int(round(np.sqrt(x.shape[1])))
    shape = image_shape or ((side, side) if side * side == x.shape[1] else (1, x.shape[1]))
    if shape[0] * shape[1] != x.shape[1]:
        raise ValueError(f"{what}: {x.shape[1]} features do not make {shape[0]}x{shape[1]} images")
    return x, y.astype(np.int64), shape


def split_arrays(
    x: np.ndarray,
    y: np.ndarray,
    n_test: Optional[int | float] = None,
    seed: int = 0,
    name: str = "custom",
    image_shape: Optional[tuple[int, int]] = None,
    n_validation: Optional[int | float] = None,
    fold: Optional[int] = None,
    n_folds: int = 10,
) -> Dataset:
    """Stratified, seeded train/test split of user arrays (``x`` in [0, 1], integer labels).

    The test part is ``n_test`` images (a count or a fraction; 0.1 by default), or with ``fold=i``
    the i-th of ``n_folds`` stratified folds (``fold_indices``; the name gains ``-fold<i>of<k>``).
    ``n_validation`` then holds a stratified validation part out of the rest (``split_validation``).
    """
    from sklearn.model_selection import train_test_split

    x, y, shape = _checked_part(x, y, "x", image_shape)
    if fold is None:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.1 if n_test is None else n_test,
                                                  random_state=seed, stratify=y)
    else:
        if n_test is not None:
            raise ValueError(f"n_test={n_test!r} and fold={fold!r} exclude each other: a fold's test part is "
                             f"1/n_folds of the images; give one of them")
        folds = fold_indices(y, n_folds, seed)
        if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < n_folds:
            raise ValueError(f"fold={fold!r} is not accepted: expected an integer in 0..{n_folds - 1} (n_folds={n_folds})")
        test = folds[fold]
        train = np.setdiff1d(np.arange(len(y)), test)
        x_tr, x_te, y_tr, y_te = x[train], x[test], y[train], y[test]
        name = f"{name}-fold{fold}of{n_folds}"
    dataset = Dataset(x_tr, y_tr, x_te, y_te, name=name, image_shape=shape)
    return dataset if n_validation is None else split_validation(dataset, n_validation, seed)


def fold_indices(labels: np.ndarray, n_folds: int = 10, seed: int = 0) -> list[np.ndarray]:
    """The sorted positions of each of ``n_folds`` stratified, seeded folds: together they hold every position once."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    smallest = min(int(c) for c in np.unique(labels, return_counts=True)[1]) if labels.size else 0
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or not 2 <= n_folds <= smallest:
        raise ValueError(f"n_folds={n_folds!r} is not accepted: expected an integer from 2 to {smallest} "
                         "(the size of the smallest class, so that every fold holds every class)")
    splitter = StratifiedKFold(n_splits=int(n_folds), shuffle=True, random_state=seed)
    return [np.sort(test) for _, test in splitter.split(np.zeros(len(labels)), labels)]


@dataclass(frozen=True)
class PooledFolds:
    """Per-image correctness pooled over the k folds' test parts: every image judged once, by the model that never saw it."""

    correct: np.ndarray
    fold: np.ndarray
    name: str

    @property
    def n_folds(self) -> int:
        """Folds pooled."""
        return int(self.fold.max()) + 1

    @property
    def n_images(self) -> int:
        """Test images pooled (all images of the dataset)."""
        return int(self.correct.size)

    @property
    def accuracy(self) -> float:
        """The pooled accuracy."""
        return float(self.correct.mean())

    @property
    def accuracy_ci(self) -> tuple[float, float]:
        """Its 95 % Wilson interval over all the pooled images."""
        return wilson_interval(int(self.correct.sum()), self.n_images)

    def fold_accuracies(self) -> np.ndarray:
        """The accuracy of each fold's test part."""
        return np.array([self.correct[self.fold == k].mean() for k in range(self.n_folds)])

    def to_dict(self) -> dict[str, Any]:
        """``accuracy``, ``accuracy_ci``, ``n_test`` (images), ``n_folds`` and the folds' own accuracies."""
        return {**with_ci("accuracy", self.accuracy, self.accuracy_ci), "n_test": self.n_images,
                "n_folds": self.n_folds, "fold_accuracies": self.fold_accuracies().tolist(), "dataset": self.name}

    def compare(self, other: "PooledFolds") -> dict[str, Any]:
        """This method against ``other`` on the same images (same folds): difference, interval, McNemar's p."""
        if not np.array_equal(self.fold, other.fold):
            raise ValueError(f"the two results pool different folds ({self.n_images} and {other.n_images} images): "
                             "run both with the same dataset, n_folds and seed so that each image is paired")
        return paired_accuracy_comparison(self.correct, other.correct)


def run_folds(evaluate: Callable[[Dataset], Any], name_or_path: str | Path = "digits", n_folds: int = 10,
              seed: int = 0, **options: Any) -> PooledFolds:
    """Call ``evaluate(dataset)`` on each fold's split and pool the per-test-image correctness it returns.

    ``evaluate`` trains or builds whatever it needs on that split's training (and validation) part and
    returns one boolean per test image; the pooled accuracy then rests on every image of the dataset.
    ``options`` go to ``load_dataset`` (e.g. ``n_validation``).
    """
    correct, fold = [], []
    for k in range(n_folds):
        dataset = load_dataset(name_or_path, seed=seed, fold=k, n_folds=n_folds, **options)
        result = np.asarray(evaluate(dataset))
        if result.shape != dataset.y_test.shape or result.dtype != bool:
            raise ValueError(f"evaluate returned {result.dtype} of shape {result.shape} for fold {k}; it must return "
                             f"one boolean per test image ({len(dataset.y_test)}), e.g. predictions == dataset.y_test")
        correct.append(result)
        fold.append(np.full(result.size, k))
    return PooledFolds(np.concatenate(correct), np.concatenate(fold), str(name_or_path))


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


_LOADERS: dict[str, Callable[..., Dataset]] = {"digits": load_digits, "fashion-mnist": load_fashion_mnist}
DATASETS = tuple(_LOADERS)


def load_dataset(name_or_path: str | Path, seed: int = 0, **options: Any) -> Dataset:
    """A built-in dataset by name (one of ``DATASETS``) or a PATH: a folder of MNIST-style IDX files, or a ``.npz``.

    ``seed`` seeds the split (none in a ``.npz``: its parts are fixed); ``options`` go to the loader
    (for the digits: ``n_test``, ``n_validation``, ``fold``, ``n_folds``).
    """
    if isinstance(name_or_path, str) and name_or_path in _LOADERS:
        return _call_loader(_LOADERS[name_or_path], name_or_path, seed=seed, **options)
    path = Path(name_or_path)
    if path.is_dir():
        return _call_loader(load_idx_folder, str(path), path, seed=seed, **options)
    if path.is_file() and path.suffix == ".npz":
        return _call_loader(load_npz, str(path), path, **options)
    raise ValueError(
        f"dataset {str(name_or_path)!r} is not accepted: give one of {', '.join(DATASETS)}, or the PATH of a folder "
        "of MNIST-style IDX files or of a .npz holding x_train, y_train, x_test, y_test (see docs/data.md)"
    )


def _call_loader(loader: Callable[..., Dataset], what: str, *args: Any, **options: Any) -> Dataset:
    """``loader(*args, **options)``, refusing options it does not take by name (folds need a dataset to split)."""
    import inspect

    accepted = [p for p in inspect.signature(loader).parameters if p not in ("path", "directory")]
    unknown = sorted(set(options) - set(inspect.signature(loader).parameters))
    if unknown:
        raise ValueError(f"dataset {what!r} does not take {', '.join(unknown)}: its options are {', '.join(accepted)} "
                         "(folds exist for datasets split here, such as digits; fashion-mnist, IDX folders and .npz "
                         "files keep their own test part)")
    return loader(*args, **options)
