"""Datasets: the default split, IDX files, user arrays."""

from __future__ import annotations

import gzip
import struct

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


# Fashion-MNIST from Debian's dataset-fashion-mnist, read once for the module: once through the loader,
# once independently with gzip and struct as the reference.

def _read_gzipped_idx(path):
    with gzip.open(path, "rb") as fh:
        magic, n = struct.unpack(">II", fh.read(8))
        dims = struct.unpack(">II", fh.read(8)) if magic == 0x803 else ()
        return magic, np.frombuffer(fh.read(), dtype=np.uint8).reshape(n, *dims)


@pytest.fixture(scope="module")
def official():
    from neurodtco.data import FASHION_MNIST_DIR

    return {stem: _read_gzipped_idx(FASHION_MNIST_DIR / f"{stem}-idx{3 if 'images' in stem else 1}-ubyte.gz")
            for stem in ("train-images", "train-labels", "t10k-images", "t10k-labels")}


@pytest.fixture(scope="module")
def fashion():
    from neurodtco.data import load_fashion_mnist

    return load_fashion_mnist(n_validation=5000, seed=0)


def test_fashion_mnist_has_the_official_parts(fashion, official):
    assert official["t10k-labels"][0] == 0x801 and official["t10k-images"][0] == 0x803
    assert len(fashion.y_train) + len(fashion.y_val) == 60_000 and len(fashion.y_test) == 10_000
    assert fashion.image_shape == (28, 28) and fashion.n_features == 28 * 28 and fashion.name == "fashion-mnist"
    assert fashion.n_classes == 10
    for x in (fashion.x_train, fashion.x_val, fashion.x_test):
        assert x.dtype == np.float64 and x.min() == 0.0 and x.max() == 1.0
    # The official files hold 6,000 images of each class for training and 1,000 for test.
    assert np.array_equal(np.bincount(fashion.y_train, minlength=10) + np.bincount(fashion.y_val, minlength=10),
                          np.full(10, 6000))
    assert np.array_equal(np.bincount(fashion.y_test, minlength=10), np.full(10, 1000))


def test_fashion_mnist_test_part_is_the_official_file(fashion, official):
    labels, images = official["t10k-labels"][1], official["t10k-images"][1]
    assert labels[0] == 9 and fashion.y_test[0] == 9  # the first test image is an ankle boot
    assert np.array_equal(fashion.y_test, labels)
    assert np.array_equal(fashion.x_test, images.reshape(10_000, 784) / 255.0)


def _images(*parts):
    """The images of all parts, each as its bytes, sorted: a multiset that ignores order."""
    return sorted(row.tobytes() for x in parts for row in np.rint(x * 255).astype(np.uint8).reshape(len(x), -1))


def test_fashion_mnist_validation_is_stratified_and_disjoint_from_training(fashion, official):
    x_val, y_val = fashion.validation()
    assert fashion.has_validation and len(y_val) == 5000
    assert np.array_equal(np.bincount(y_val, minlength=10), np.full(10, 500))
    # Training and validation together are the official training images, each exactly once.
    assert _images(fashion.x_train, x_val) == _images(official["train-images"][1] / 255.0)


def test_fashion_mnist_validation_is_seeded(fashion):
    from neurodtco.data import load_fashion_mnist

    again = load_fashion_mnist(n_validation=5000, seed=0)
    assert np.array_equal(again.y_val, fashion.y_val) and np.array_equal(again.x_val, fashion.x_val)
    del again
    other = load_fashion_mnist(n_validation=5000, seed=1)
    assert not np.array_equal(other.x_val, fashion.x_val)
    assert np.array_equal(np.bincount(other.y_val, minlength=10), np.full(10, 500))


# Bringing your own data: a folder of MNIST-style IDX files, a .npz, and the names load_dataset accepts.

def _idx_folder(path, n_train=120, n_test=30, gz=(), side=6):
    """Small MNIST-style files; a class lights its own pixel, so each image tells its label."""
    from neurodtco.data import IDX_FILES

    path.mkdir(parents=True, exist_ok=True)
    parts = {}
    for part, n in (("train", n_train), ("test", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = np.zeros((n, side, side), dtype=np.uint8)
        images[np.arange(n), 0, labels % side] = 255
        images[np.arange(n), 1, :] = np.arange(n)[:, None] % 200  # makes every image distinct
        parts[f"{part}_images"], parts[f"{part}_labels"] = images, labels
    for part, stem in IDX_FILES.items():
        write_idx(path / stem, parts[part])
        if part in gz:
            (path / f"{stem}.gz").write_bytes(gzip.compress((path / stem).read_bytes()))
            (path / stem).unlink()
    return parts


@pytest.mark.parametrize("gz", [(), ("train_images", "test_labels")])
def test_idx_folder_loads_the_official_parts_and_holds_out_validation(tmp_path, gz):
    from neurodtco.data import load_dataset

    parts = _idx_folder(tmp_path / "mine", gz=gz)
    ds = load_dataset(tmp_path / "mine", seed=0)
    assert ds.name == "mine" and ds.image_shape == (6, 6) and ds.n_features == 36
    assert np.array_equal(ds.x_test, parts["test_images"].reshape(30, 36) / 255.0)
    assert np.array_equal(ds.y_test, parts["test_labels"])
    # 1/12 of the 120 training images, one of each class; the rest stay training images in file order.
    x_val, y_val = ds.validation()
    assert np.array_equal(np.bincount(y_val), np.ones(10)) and len(ds.y_train) == 110
    official = parts["train_images"].reshape(120, 36) / 255.0
    in_val = np.array([any(np.array_equal(row, v) for v in x_val) for row in official])
    assert np.array_equal(ds.x_train, official[~in_val]) and np.array_equal(ds.y_train, parts["train_labels"][~in_val])
    assert np.array_equal(load_dataset(str(tmp_path / "mine"), seed=0, n_validation=20).validation()[1].shape, (20,))


def test_idx_folder_refuses_mismatched_files(tmp_path):
    from neurodtco.data import load_idx_folder

    _idx_folder(tmp_path / "sizes")
    write_idx(tmp_path / "sizes" / "t10k-images-idx3-ubyte", np.zeros((30, 5, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"test images are \(5, 5\) pixels, the training images \(6, 6\)"):
        load_idx_folder(tmp_path / "sizes")
    _idx_folder(tmp_path / "labels")
    write_idx(tmp_path / "labels" / "train-labels-idx1-ubyte", np.zeros(119, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"one integer label per image \(120\)"):
        load_idx_folder(tmp_path / "labels")


def test_fashion_mnist_folder_comes_from_the_argument_then_the_variable(tmp_path, monkeypatch):
    from neurodtco.data import FASHION_MNIST_ENV, load_fashion_mnist

    _idx_folder(tmp_path / "from_env", n_train=120)
    _idx_folder(tmp_path / "from_arg", n_train=240)
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path / "from_env"))
    ds = load_fashion_mnist(n_validation=10)
    assert ds.name == "fashion-mnist" and len(ds.y_train) + len(ds.y_val) == 120
    assert len(load_fashion_mnist(n_validation=10, directory=tmp_path / "from_arg").y_train) == 230


def test_missing_fashion_mnist_names_the_folder_and_the_package(tmp_path, monkeypatch):
    from neurodtco.data import FASHION_MNIST_ENV, load_fashion_mnist

    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as info:
        load_fashion_mnist()
    assert str(tmp_path / "empty") in str(info.value) and FASHION_MNIST_ENV in str(info.value)
    _idx_folder(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte") as info:
        load_fashion_mnist(directory=tmp_path / "partial")
    assert "train-images" not in str(info.value)


def test_npz_loads_with_and_without_validation(tmp_path):
    from neurodtco.data import load_dataset

    rng = np.random.default_rng(2)
    arrays = {"x_train": rng.random((40, 4, 4)), "y_train": np.arange(40) % 4, "x_test": rng.random((12, 16)),
              "y_test": np.arange(12) % 4}
    np.savez(tmp_path / "plain.npz", **arrays)
    ds = load_dataset(tmp_path / "plain.npz")
    assert ds.name == "plain" and ds.image_shape == (4, 4) and not ds.has_validation
    assert np.array_equal(ds.x_train, arrays["x_train"].reshape(40, 16)) and np.array_equal(ds.x_test, arrays["x_test"])
    with pytest.raises(ValueError, match="no validation part.*split_validation"):
        ds.validation()
    np.savez(tmp_path / "val.npz", **arrays, x_val=rng.random((8, 16)), y_val=np.arange(8) % 4)
    x_val, y_val = load_dataset(str(tmp_path / "val.npz")).validation()
    assert x_val.shape == (8, 16) and np.array_equal(y_val, np.arange(8) % 4)
    np.savez(tmp_path / "bad.npz", x_train=arrays["x_train"], y_train=arrays["y_train"])
    with pytest.raises(ValueError, match="lacks x_test, y_test"):
        load_dataset(tmp_path / "bad.npz")
    np.savez(tmp_path / "half.npz", **arrays, x_val=rng.random((8, 16)))
    with pytest.raises(ValueError, match="only one of x_val and y_val"):
        load_dataset(tmp_path / "half.npz")
    np.savez(tmp_path / "wide.npz", **{**arrays, "x_test": rng.random((12, 9))})
    with pytest.raises(ValueError, match="x_test: 9 features"):
        load_dataset(tmp_path / "wide.npz")


def test_load_dataset_by_name_and_unknown_names(tmp_path):
    from neurodtco.data import DATASETS, load_dataset

    assert DATASETS == ("digits", "fashion-mnist")
    assert np.array_equal(load_dataset("digits", seed=3).x_test, load_digits(seed=3).x_test)
    for bad in ("mnist", tmp_path / "missing.npz", tmp_path):  # an empty folder is no IDX folder
        with pytest.raises((ValueError, FileNotFoundError), match="digits, fashion-mnist|train-images"):
            load_dataset(bad)
    with pytest.raises(ValueError, match="'mnist' is not accepted: give one of digits, fashion-mnist, or the PATH"):
        load_dataset("mnist")


def test_digits_keep_their_split_and_validation_is_held_out_on_request(digits):
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    from neurodtco.data import Dataset, split_validation

    bunch = sklearn_digits()
    _, x_te, _, y_te = train_test_split(bunch.data / 16.0, bunch.target, test_size=180, random_state=0,
                                        stratify=bunch.target)
    assert np.array_equal(digits.x_test, x_te) and np.array_equal(digits.y_test, y_te)
    assert not digits.has_validation and digits.x_val is None
    with pytest.raises(ValueError, match="'digits' has no validation part"):
        digits.validation()
    held = split_validation(digits, 160, seed=0)
    assert len(held.y_train) + len(held.y_val) == len(digits.y_train) and held.x_test is digits.x_test
    assert np.array_equal(np.bincount(held.y_val), np.full(10, 16))
    assert _images(held.x_train, held.x_val) == _images(digits.x_train)
    assert not np.array_equal(split_validation(digits, 160, seed=1).y_val, held.y_val)
    with pytest.raises(ValueError, match="n_validation=5 is not accepted.*10 classes"):
        split_validation(digits, 5)
    with pytest.raises(ValueError, match="x_val and y_val come together"):
        Dataset(digits.x_train, digits.y_train, digits.x_test, digits.y_test, x_val=digits.x_test)


# --dataset on the command line.

DATA_COMMANDS = {  # each command that takes the data options, with the arguments it needs besides
    "train": [], "simulate": [], "netlist": ["--out", "x.sp"], "verify": [], "imperfect": [], "correct": [],
    "mitigate": ["retrain"], "defects show": ["--defect", "random:p=0.01"], "transistor-check": [], "energy": [],
    "yield": ["--d0", "1e-3"],
}


def _cli(*args):
    from typer.testing import CliRunner

    from neurodtco.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _last_json(result):
    import json

    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_data_command_takes_dataset_with_digits_by_default():
    import typer

    from neurodtco.cli import app

    group = typer.main.get_command(app)
    found = {}
    for name, cmd in group.commands.items():
        subs = getattr(cmd, "commands", {name: cmd})
        found.update({(name if sub == name else f"{name} {sub}"): c for sub, c in subs.items()})
    with_dataset = {name for name, cmd in found.items() for p in cmd.params if "--dataset" in p.opts}
    assert with_dataset == set(DATA_COMMANDS)
    for name in DATA_COMMANDS:
        (param,) = [p for p in found[name].params if "--dataset" in p.opts]
        assert param.default == "digits", name


def test_a_dataset_without_default_network_asks_for_a_model(tmp_path):
    np.savez(tmp_path / "tiny.npz", x_train=np.eye(4)[np.arange(20) % 4], y_train=np.arange(20) % 4,
             x_test=np.eye(4), y_test=np.arange(4))
    for name, extra in DATA_COMMANDS.items():
        if name == "train":
            continue
        result = _cli(*name.split(), *extra, "--dataset", tmp_path / "tiny.npz")
        assert result.exit_code == 2, (name, result.output)
        message = result.stderr.replace("\n", " ")
        assert f"--dataset {tmp_path / 'tiny.npz'} has no default network yet: give --model FILE" in message, name
        assert "neurodtco train --dataset" in message
    result = _cli("simulate", "--dataset", "mnist")
    assert result.exit_code == 2 and "'mnist' is not accepted: give one of digits, fashion-mnist" in result.stderr


def test_train_and_simulate_follow_the_dataset_features(tmp_path):
    rng = np.random.default_rng(3)
    labels = np.arange(60) % 3
    x = rng.random((60, 5, 5)) * 0.2
    x[np.arange(60), 0, labels] = 1.0  # each class lights its own pixel: learnable
    np.savez(tmp_path / "three.npz", x_train=x[:45], y_train=labels[:45], x_test=x[45:], y_test=labels[45:])
    trained = _last_json(_cli("train", "--dataset", tmp_path / "three.npz", "--hidden", "4", "--epochs", "2",
                              "--out", tmp_path / "m.pt", "--json"))
    assert trained["widths"] == [25, 4, 3] and trained["dataset"] == "three" and trained["n_test"] == 15
    run = _last_json(_cli("simulate", "--dataset", tmp_path / "three.npz", "--model", tmp_path / "m.pt", "--json"))
    assert run["n_test"] == 15 and run["accuracy"] == run["software_accuracy"] == trained["software_accuracy"]
    result = _cli("simulate", "--model", tmp_path / "m.pt")  # the digits have 64 inputs, not 25
    assert result.exit_code == 2 and "expects 25 inputs; the digits images have 64" in result.stderr


def test_train_on_fashion_mnist_builds_a_784_input_network(tmp_path):
    trained = _last_json(_cli("train", "--dataset", "fashion-mnist", "--hidden", "4", "--epochs", "1",
                              "--out", tmp_path / "f.pt", "--json"))
    assert trained["widths"] == [784, 4, 10] and trained["n_test"] == 10_000 and trained["dataset"] == "fashion-mnist"
    assert trained["software_accuracy"] > 0.5  # ten classes: chance is 0.1


# The Makefile installs what is missing, with one apt-get update.

def _make(*args):
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(["make", "-s", "-C", str(root), *args, "APT=echo apt-get"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_make_installs_the_missing_packages_with_one_update(tmp_path):
    assert _make("datasets", f"FASHION_MNIST_DIR={tmp_path}") == []  # the folder is there
    assert _make("datasets", f"FASHION_MNIST_DIR={tmp_path / 'missing'}") == [
        "installing dataset-fashion-mnist", "apt-get update -q", "apt-get install -y -q dataset-fashion-mnist"]
    assert _make("system-tools", "installed.ngspice=false", "installed.chromium=true",
                 f"FASHION_MNIST_DIR={tmp_path / 'missing'}") == [
        "installing ngspice dataset-fashion-mnist", "apt-get update -q",
        "apt-get install -y -q ngspice dataset-fashion-mnist"]
    for target in ("test", "demo"):  # both reach the dataset check
        assert any("dataset-fashion-mnist" in line for line in _make("-n", target)), target


# Validation parts and k folds.

def _ids(x):
    """The hidden image number of the synthetic images below (their first pixel is number / n)."""
    return np.rint(x[:, 0] * 1000).astype(int)


def _numbered(n=1000, classes=5):
    """``n`` images whose first pixel names the image (k / 1000), labels cycling through ``classes``."""
    rng = np.random.default_rng(0)
    x = np.column_stack([np.arange(n) / 1000, rng.random((n, 3))])
    return x, np.arange(n) % classes


def test_default_digits_split_is_bit_identical_to_the_one_cached_networks_were_trained_on():
    """No new option given: the same train/test split, order and name as before folds existed."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    for seed in (0, 3):
        x_tr, x_te, y_tr, y_te = train_test_split(bunch.data.astype(np.float64) / 16.0, bunch.target, test_size=180,
                                                  random_state=seed, stratify=bunch.target)
        d = load_digits(seed=seed)
        assert d.name == "digits" and not d.has_validation
        for got, want in ((d.x_train, x_tr), (d.x_test, x_te), (d.y_train, y_tr), (d.y_test, y_te)):
            assert got.tobytes() == want.astype(got.dtype).tobytes()


def test_folds_partition_the_images_and_are_stratified():
    from neurodtco.data import fold_indices

    x, y = _numbered()
    folds = fold_indices(y, 10, seed=2)
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(len(y)))  # each image in exactly one fold
    for test in folds:
        assert np.array_equal(np.bincount(y[test], minlength=5), np.full(5, 20))  # 200 per class / 10 folds
    parts = [split_arrays(x, y, seed=2, fold=k) for k in range(10)]
    assert np.array_equal(np.sort(np.concatenate([_ids(p.x_test) for p in parts])), np.arange(len(y)))
    for k, p in enumerate(parts):
        assert set(_ids(p.x_train)).isdisjoint(_ids(p.x_test)) and len(p.y_train) + len(p.y_test) == len(y)
        assert np.array_equal(_ids(p.x_test), folds[k]) and p.name == f"custom-fold{k}of10"
    assert not np.array_equal(fold_indices(y, 10, seed=3)[0], folds[0])


def test_validation_is_disjoint_from_training_and_test_with_and_without_folds():
    x, y = _numbered()
    for fold in (None, 4):
        d = split_arrays(x, y, seed=1, n_validation=100, fold=fold)
        train, val, test = _ids(d.x_train), _ids(d.x_val), _ids(d.x_test)
        assert len(val) == 100 and np.array_equal(np.bincount(d.y_val), np.full(5, 20))
        assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
        assert len(train) + len(val) + len(test) == len(y)
    # The validation part comes out of training only: the test part is the one without validation.
    assert np.array_equal(split_arrays(x, y, seed=1, n_validation=100).x_test, split_arrays(x, y, seed=1).x_test)


def test_digits_folds_cover_all_1797_images_and_validation_is_named():
    whole = load_digits(seed=0, n_validation=180)
    assert whole.name == "digits-val180" and len(whole.y_val) == 180
    assert np.array_equal(whole.x_test, load_digits(seed=0).x_test)
    parts = [load_digits(seed=0, fold=k) for k in range(10)]
    assert sum(len(p.y_test) for p in parts) == 1797
    assert _images(*(p.x_test for p in parts)) == _images(load_digits().x_all)
    counts = np.array([np.bincount(p.y_test, minlength=10) for p in parts])
    assert np.ptp(counts, axis=0).max() <= 1  # each class spread over the folds as evenly as it can be
    with pytest.raises(ValueError, match="n_test=100 and fold=1 exclude each other"):
        load_digits(fold=1, n_test=100)
    with pytest.raises(ValueError, match="fold=10 is not accepted: expected an integer in 0..9"):
        load_digits(fold=10)
    with pytest.raises(ValueError, match="n_folds=1 is not accepted"):
        load_digits(fold=0, n_folds=1)


def test_load_dataset_passes_fold_options_and_refuses_them_where_the_test_part_is_fixed(tmp_path):
    from neurodtco.data import load_dataset

    assert np.array_equal(load_dataset("digits", seed=1, fold=2, n_folds=5).x_test,
                          load_digits(seed=1, fold=2, n_folds=5).x_test)
    with pytest.raises(ValueError, match="'fashion-mnist' does not take fold: its options are"):
        load_dataset("fashion-mnist", fold=0)
    np.savez(tmp_path / "p.npz", x_train=np.eye(4), y_train=np.arange(4), x_test=np.eye(4), y_test=np.arange(4))
    with pytest.raises(ValueError, match="does not take fold, n_folds"):
        load_dataset(tmp_path / "p.npz", fold=0, n_folds=3)


def test_run_folds_pools_every_image_once_with_a_wilson_interval():
    from neurodtco.data import run_folds
    from neurodtco.stats import wilson_interval

    seen = []

    def evaluate(dataset):
        seen.append(dataset.name)
        return dataset.y_test == 3

    pooled = run_folds(evaluate, "digits", n_folds=10, seed=0)
    n3 = int(np.sum(load_digits().y_all == 3))  # each image judged once: the pooled share is class 3's share
    assert pooled.n_images == 1797 and pooled.accuracy == pytest.approx(n3 / 1797)
    assert pooled.accuracy_ci == wilson_interval(n3, 1797)
    out = pooled.to_dict()
    assert out["n_test"] == 1797 and out["accuracy_ci"][0] < out["accuracy"] < out["accuracy_ci"][1]
    assert out["n_folds"] == 10 and len(out["fold_accuracies"]) == 10 and out["dataset"] == "digits"
    assert seen == [f"digits-fold{k}of10" for k in range(10)]
    with pytest.raises(ValueError, match="one boolean per test image"):
        run_folds(lambda d: d.y_test, "digits", n_folds=2)
    # Two methods on the same folds are compared image by image.
    other = run_folds(lambda d: d.y_test <= 3, "digits", n_folds=10, seed=0)
    paired = other.compare(pooled)  # every class-3 image is right in both, classes 0-2 only in `other`
    n012 = int(np.sum(load_digits().y_all <= 2))
    assert paired["difference"] == pytest.approx(n012 / 1797) and paired["n_images"] == 1797
    assert paired["mcnemar_p"] < 1e-10
    with pytest.raises(ValueError, match="pool different folds"):
        pooled.compare(run_folds(lambda d: d.y_test == 3, "digits", n_folds=5))
