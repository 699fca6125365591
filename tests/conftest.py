"""Shared fixtures.

Data sets: the folder that MNISTLAB_DATA_DIR names when pytest starts is the real-data folder
(in CI, ../shared/datasets: the full MNIST and Fashion-MNIST); `real_data_dir` hands it to the
tests marked `slow`. For everything else the variable is pointed at the small samples committed
in tests/data, here at import time, before anything loads a data set (`load_dataset` caches).
Nothing is ever downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from trainer.data import DATA_DIR_ENV
from trainer.reporting import EpochRecord, Reporter

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO_ROOT / "tests" / "data"


def _resolve_incoming(value: str | None) -> Path | None:
    """The folder as given; a relative path is taken from the working directory, else the repo."""
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    for base in (Path.cwd(), REPO_ROOT):
        if (base / path).is_dir():
            return (base / path).resolve()
    return (REPO_ROOT / path).resolve()


_INCOMING_VALUE = os.environ.get(DATA_DIR_ENV)
REAL_DATA_DIR = _resolve_incoming(_INCOMING_VALUE)
os.environ[DATA_DIR_ENV] = str(SAMPLE_DIR)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _INCOMING_VALUE is None:
        os.environ.pop(DATA_DIR_ENV, None)
    else:
        os.environ[DATA_DIR_ENV] = _INCOMING_VALUE


def clear_data_caches() -> None:
    """Forget every data set (and pixel statistics) that trainer cached in this process."""
    from trainer import data, preprocessing

    data.load_dataset.cache_clear()
    for module in (data, preprocessing):
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The full real data sets. Missing: a failure in CI, a skip elsewhere (never a download)."""
    wanted = ("mnist.npz", "fashion_mnist.npz")
    if REAL_DATA_DIR is None:
        reason = (f"{DATA_DIR_ENV} is not set: point it at the folder with the full "
                  f"{' and '.join(wanted)} (e.g. ../shared/datasets) to run the real-data tests")
    elif missing := [name for name in wanted if not (REAL_DATA_DIR / name).is_file()]:
        reason = (f"{DATA_DIR_ENV}={_INCOMING_VALUE} ({REAL_DATA_DIR}) lacks "
                  f"{', '.join(missing)}: the real-data tests need the full data sets there")
    elif REAL_DATA_DIR.resolve() == SAMPLE_DIR.resolve():
        reason = f"{DATA_DIR_ENV} names the committed samples, not the full real data sets"
    else:
        return REAL_DATA_DIR
    if os.environ.get("CI"):
        pytest.fail(f"real data missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def use_data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path | None], None]]:
    """Switch the data folder (None: unset) for one test; caches are cleared before and after."""

    def switch(folder: Path | None) -> None:
        if folder is None:
            monkeypatch.delenv(DATA_DIR_ENV, raising=False)
        else:
            monkeypatch.setenv(DATA_DIR_ENV, str(folder))
        clear_data_caches()

    yield switch
    clear_data_caches()


@pytest.fixture
def make_spec() -> Callable[..., Any]:
    """A small, fast spec: a recipe (default `scaled`) with a partial spec merged over it.

    Defaults: 1 epoch on the first 1000 sample images, batch 500 (big batches skip XLA
    compilation, which dominates tiny runs on a CPU).
    """
    from trainer.recipes import recipe_spec
    from trainer.spec import deep_merge

    def make(overrides: dict[str, Any] | None = None, recipe: str = "scaled") -> Any:
        small = {"data": {"max_train_samples": 1000}, "training": {"epochs": 1, "batch_size": 500}}
        return recipe_spec(recipe, deep_merge(small, overrides or {}))

    return make


class RecordingReporter(Reporter):
    """Records what training tells it; asks to stop once `stop_after_epochs` epochs finished."""

    def __init__(self, stop_after_epochs: int | None = None) -> None:
        self.stop_after_epochs = stop_after_epochs
        self.starts: list[dict[str, int]] = []
        self.records: list[EpochRecord] = []
        self.stop_questions = 0

    def on_start(self, *, total_epochs: int, initial_epoch: int) -> None:
        self.starts.append({"total_epochs": total_epochs, "initial_epoch": initial_epoch})

    def on_epoch(self, record: EpochRecord) -> None:
        self.records.append(record)

    def should_stop(self) -> bool:
        self.stop_questions += 1
        return self.stop_after_epochs is not None and len(self.records) >= self.stop_after_epochs


@pytest.fixture
def recording_reporter() -> type[RecordingReporter]:
    return RecordingReporter
