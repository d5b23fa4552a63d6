"""Datasets: the default split, IDX files, user arrays."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from neurodtco.data import load_digits, load_idx, read_idx, split_arrays, to_voltages, write_idx


def test_digits_split_is_stratified_and_seeded():
    a, b = load_digits(seed=3), load_digits(seed=3)
    assert np.array_equal(a.x_test, b.x_test)
    assert len(a.y_test) == 180 and len(a.y_train) == 1797 - 180
    counts = np.bincount(a.y_test, minlength=10)
    assert counts.min() >= 17 and counts.max() <= 19  # 180 spread evenly over 10 classes
    assert a.x_train.min() >= 0 and a.x_train.max() <= 1
    assert not np.array_equal(load_digits(seed=4).x_test, a.x_test)


def test_to_voltages_maps_unit_range_onto_read_window():
    assert np.allclose(to_voltages(np.array([0.0, 0.5, 1.0]), 0.2), [0.0, 0.1, 0.2])
    with pytest.raises(ValueError, match="v_read"):
        to_voltages(np.ones(3), 0.0)


def _fake_mnist(tmp_path, n=60, gz=False):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10, dtype=np.uint8), n // 10)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for i, lab in enumerate(labels):  # each class lights a different block: learnable and checkable
        images[i, 2 * lab:2 * lab + 4, 4:24] = 200 + rng.integers(0, 55)
    ip, lp = tmp_path / "img.idx", tmp_path / "lab.idx"
    write_idx(ip, images)
    write_idx(lp, labels)
    if gz:
        for p in (ip, lp):
            p.with_suffix(".idx.gz").write_bytes(gzip.compress(p.read_bytes()))
        ip, lp = ip.with_suffix(".idx.gz"), lp.with_suffix(".idx.gz")
    return images, labels, ip, lp


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_and_downsampling(tmp_path, gz):
    images, labels, ip, lp = _fake_mnist(tmp_path, gz=gz)
    assert np.array_equal(read_idx(ip), images)
    ds = load_idx(ip, lp, downsample=4, n_test=20, seed=0)
    assert ds.n_features == 49 and ds.image_shape == (7, 7)
    assert len(ds.y_test) == 20 and ds.x_all.max() == pytest.approx(1.0)
    # block averaging: a 4x4 block mean of the original equals the downsampled pixel
    full = load_idx(ip, lp, downsample=1, n_test=20, seed=0)
    blocks = full.x_test.reshape(-1, 7, 4, 7, 4).mean(axis=(2, 4)).reshape(-1, 49)
    assert np.allclose(blocks * full.x_all.max(), ds.x_test * full.x_all.max())


def test_unreadable_idx_is_refused(tmp_path):
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x89PNG not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    truncated = tmp_path / "t.idx"
    truncated.write_bytes(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") * 3 + b"\x00" * 5)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(truncated)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_idx(tmp_path / "missing.idx")
    _, _, ip, lp = _fake_mnist(tmp_path)
    with pytest.raises(ValueError, match="downsample"):
        load_idx(ip, lp, downsample=3)


def test_user_arrays():
    rng = np.random.default_rng(1)
    x = rng.random((100, 16))
    y = np.repeat(np.arange(4), 25)
    ds = split_arrays(x, y, n_test=20, seed=0)
    assert ds.image_shape == (4, 4) and len(ds.y_test) == 20
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        split_arrays(x * 16, y)
    with pytest.raises(ValueError, match="shape"):
        split_arrays(x, y[:50])
