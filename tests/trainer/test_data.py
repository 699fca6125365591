"""The data loader: the data folder first, never a silent download, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainer import data
from trainer.data import CLASS_NAMES, DATA_DIR_ENV, DatasetUnavailable, load_dataset


def test_ordinary_tests_use_the_committed_sample(sample_dir: Path) -> None:
    mnist = load_dataset("mnist")
    assert Path(mnist.source) == sample_dir / "mnist.npz"
    with np.load(sample_dir / "mnist.npz") as archive:
        assert mnist.x_train.shape == archive["x_train"].shape
        np.testing.assert_array_equal(mnist.y_test, archive["y_test"])


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_dataset_has_keras_layout(name: str) -> None:
    ds = load_dataset(name)
    assert ds.name == name
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.uint8 and y.dtype == np.uint8
        assert x.ndim == 3 and x.shape[1:] == (28, 28)
        assert y.shape == (len(x),)
        assert set(np.unique(y)) == set(range(10)), "every class present"
        assert x.flags.c_contiguous
    assert len(CLASS_NAMES[name]) == 10


def test_dataset_is_read_once_per_process() -> None:
    assert load_dataset("mnist") is load_dataset("mnist")


def test_empty_folder_and_no_download_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_data_dir
) -> None:
    def offline(name: str):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_from_keras", offline)
    use_data_dir(tmp_path)
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("mnist")
    message = str(info.value)
    assert DATA_DIR_ENV in message
    assert str(tmp_path / "mnist.npz") in message
    assert "network is unreachable" in message
    assert isinstance(info.value.__cause__, OSError)


def test_unset_variable_and_no_download_says_to_set_it(
    monkeypatch: pytest.MonkeyPatch, use_data_dir
) -> None:
    def offline(name: str):
        raise OSError("no route to host")

    monkeypatch.setattr(data, "_from_keras", offline)
    use_data_dir(None)
    with pytest.raises(DatasetUnavailable, match=f"{DATA_DIR_ENV} is not set"):
        load_dataset("fashion_mnist")


def test_folder_without_this_dataset_falls_back_to_keras(
    tmp_path: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch, use_data_dir
) -> None:
    (tmp_path / "mnist.npz").write_bytes((sample_dir / "mnist.npz").read_bytes())
    asked: list[str] = []

    def offline(name: str):
        asked.append(name)
        raise OSError("offline")

    monkeypatch.setattr(data, "_from_keras", offline)
    use_data_dir(tmp_path)
    assert load_dataset("mnist").source == str(tmp_path / "mnist.npz")
    assert asked == [], "a data set in the folder is not downloaded"
    with pytest.raises(DatasetUnavailable, match="fashion_mnist"):
        load_dataset("fashion_mnist")
    assert asked == ["fashion_mnist"]


def test_malformed_archive_is_rejected_naming_the_array(
    tmp_path: Path, sample_dir: Path, use_data_dir
) -> None:
    with np.load(sample_dir / "mnist.npz") as archive:
        arrays = dict(archive)
    arrays["x_test"] = arrays["x_test"].reshape(len(arrays["x_test"]), -1)  # flattened: (n, 784)
    np.savez(tmp_path / "mnist.npz", **arrays)
    use_data_dir(tmp_path)
    with pytest.raises(DatasetUnavailable, match=r"x_test has shape \(\d+, 784\)"):
        load_dataset("mnist")


@pytest.mark.slow
def test_real_mnist_is_the_full_canonical_set(real_data_dir: Path, use_data_dir) -> None:
    use_data_dir(real_data_dir)
    mnist = load_dataset("mnist")
    assert mnist.source == str(real_data_dir / "mnist.npz")
    assert mnist.x_train.shape == (60000, 28, 28)
    assert mnist.x_test.shape == (10000, 28, 28)
    # Published figures of the canonical training set: pixel mean 33.318, std 78.567.
    pixels = mnist.x_train.astype(np.float64)
    assert pixels.mean() == pytest.approx(33.318, abs=1e-3)
    assert pixels.std() == pytest.approx(78.567, abs=1e-3)
    fashion = load_dataset("fashion_mnist")
    assert fashion.x_train.shape == (60000, 28, 28)
    assert fashion.x_test.shape == (10000, 28, 28)


@pytest.mark.parametrize(("ci", "outcome"), [("1", "1 error"), ("", "1 skipped")])
def test_real_data_tests_fail_in_ci_and_skip_elsewhere_when_the_data_is_missing(
    ci: str, outcome: str, tmp_path: Path
) -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env[DATA_DIR_ENV] = str(tmp_path / "nowhere")
    if ci:
        env["CI"] = ci
    test = "tests/trainer/test_data.py::test_real_mnist_is_the_full_canonical_set"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                           test], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert outcome in done.stdout, done.stdout + done.stderr
    assert "lacks mnist.npz" in done.stdout
    assert done.returncode == (1 if ci else 0)
