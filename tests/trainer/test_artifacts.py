"""A finished run's folder: model.keras, spec.json, result.json and the PNG plots."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from PIL import Image

from trainer.artifacts import MODEL_FILE, PLOT_NAMES, PLOTS_DIR, RESULT_FILE, SPEC_FILE
from trainer.data import load_dataset
from trainer.spec import ExperimentSpec
from trainer.train import train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """One short run of the `scaled` recipe with its artifacts written (shared by this module)."""
    from trainer.recipes import recipe_spec

    spec = recipe_spec("scaled", {"name": "artifact run", "data": {"max_train_samples": 1000},
                                  "training": {"epochs": 2, "batch_size": 500}})
    out = tmp_path_factory.mktemp("run") / "nested" / "folder"  # created by train
    result = train(spec, out)
    return spec, out, result


def test_every_artifact_is_written_and_listed(run) -> None:
    _spec, out, result = run
    expected = {"model": MODEL_FILE, "spec": SPEC_FILE, "result": RESULT_FILE,
                **{name: f"{PLOTS_DIR}/{name}.png" for name in PLOT_NAMES}}
    assert result.artifacts == expected
    for relative in expected.values():
        assert (out / relative).is_file(), relative
        assert (out / relative).stat().st_size > 0, relative
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert written == set(expected.values()), "no temporary or stray files left behind"


@pytest.mark.parametrize("name", PLOT_NAMES)
def test_plots_are_real_pngs_of_sensible_size(run, name: str) -> None:
    _spec, out, _result = run
    path = out / PLOTS_DIR / f"{name}.png"
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert 200 <= width <= 4000 and 150 <= height <= 4000, image.size
        pixels = np.asarray(image.convert("L"))
        assert pixels.std() > 0, "not a blank image"


def test_spec_json_is_the_spec(run) -> None:
    spec, out, _result = run
    written = ExperimentSpec.model_validate_json((out / SPEC_FILE).read_text())
    assert written == spec
    assert written.name == "artifact run"


def test_result_json_is_the_result(run) -> None:
    spec, out, result = run
    stored = json.loads((out / RESULT_FILE).read_text())
    assert stored == json.loads(json.dumps(result.as_dict()))
    assert stored["spec_hash"] == spec.spec_hash()
    assert stored["stop_reason"] == "completed"
    assert stored["epochs_run"] == 2 == len(stored["history"]["loss"])
    assert stored["seconds"] > 0, "written after the run's time is known"
    assert stored["artifacts"]["model"] == MODEL_FILE
    assert stored["summary"]["total_params"] == result.summary.total_params


def test_saved_model_reproduces_the_reported_evaluation(run) -> None:
    _spec, out, result = run
    model = keras.saving.load_model(out / MODEL_FILE, safe_mode=True)
    mnist = load_dataset("mnist")
    probabilities = model.predict(mnist.x_test, verbose=0)  # raw 0-255 pixels
    predicted = probabilities.argmax(axis=1)
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (mnist.y_test, predicted), 1)
    assert matrix.tolist() == result.evaluation.confusion_matrix
    assert (predicted == mnist.y_test).mean() == pytest.approx(result.evaluation.test_accuracy)
    worst = result.evaluation.worst_mistakes[0]
    assert probabilities[worst.index, worst.predicted] == pytest.approx(worst.confidence,
                                                                        rel=1e-5)
    assert model.get_layer("preprocessing").get_config()["scale"] == pytest.approx(1 / 255)


def test_weight_statistics_describe_the_saved_kernels(run) -> None:
    _spec, out, result = run
    model = keras.saving.load_model(out / MODEL_FILE, safe_mode=True)
    stats = {w.layer: w for w in result.weights}
    assert set(stats) == {"dense_1", "output"}
    for name, w in stats.items():
        kernel = model.get_layer(name).kernel.numpy().astype(np.float64)
        assert w.count == kernel.size
        assert w.mean == pytest.approx(kernel.mean(), abs=1e-9)
        assert w.std == pytest.approx(kernel.std(), rel=1e-9)
        assert (w.min, w.max) == pytest.approx((kernel.min(), kernel.max()))
        assert w.fraction_beyond_0_2 == pytest.approx((np.abs(kernel) > 0.2).mean())
