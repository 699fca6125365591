"""Results people look at, and predictions, on a model trained through the live service."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from service_helpers import (
    SAMPLE_DATA,
    TERMINAL,
    small_experiment,
    submit,
    wait_for,
    wait_until_done,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(live_service) -> dict:
    client = live_service.client
    created = submit(client, small_experiment(4, name="for-results"))
    final = wait_until_done(client, created["id"])
    assert final["status"] == "succeeded", final["error"]
    return final


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    with np.load(SAMPLE_DATA / "mnist.npz") as data:
        return data["x_test"], data["y_test"]


def encode(array: np.ndarray, fmt: str, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


def photo_like(digit: np.ndarray, seed: int) -> bytes:
    """Dark ink on light paper, off-centre on a bigger sheet, enlarged, noisy, as a JPEG."""
    rng = np.random.default_rng(seed)
    big = np.asarray(Image.fromarray(255 - digit).resize((168, 168), Image.BILINEAR), dtype=float)
    sheet = np.full((400, 320), 235.0)
    sheet[40:208, 120:288] = np.minimum(sheet[40:208, 120:288], big)
    sheet += rng.normal(0, 12, sheet.shape)
    rgb = np.stack([sheet, sheet * 0.97, sheet * 0.92], axis=-1).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def predict_files(client, experiment_id: str, files: list[tuple[str, bytes, str]], **params):
    return client.post("/predict", params={"experiment_id": experiment_id, **params},
                       files=[("files", f) for f in files])


def test_predict_png_jpeg_uploads_and_instances_agree(live_service, trained, digits) -> None:
    client = live_service.client
    x, y = digits
    picks = list(range(12))
    files = [(f"d{i}.png", encode(x[i], "PNG"), "image/png") for i in picks[:6]]
    files += [(f"d{i}.jpg", encode(x[i], "JPEG", "RGB"), "image/jpeg") for i in picks[6:]]
    by_upload = predict_files(client, trained["id"], files)
    assert by_upload.status_code == 200, by_upload.text
    uploaded = by_upload.json()["predictions"]
    assert [p["input"] for p in uploaded] == [f[0] for f in files]
    by_rows = client.post("/predict", params={"experiment_id": trained["id"]},
                          json={"instances": [x[i].reshape(-1).tolist() for i in picks[:6]]
                                + [x[i].tolist() for i in picks[6:]]})
    assert by_rows.status_code == 200, by_rows.text
    rows = by_rows.json()["predictions"]
    for p in rows + uploaded:
        assert len(p["probabilities"]) == 10
        assert abs(sum(p["probabilities"]) - 1) < 1e-3
        assert p["digit"] == int(np.argmax(p["probabilities"]))
    correct = sum(p["digit"] == int(y[i]) for i, p in zip(picks, rows, strict=True))
    assert correct >= 10, "the model trained on the sample reads most clean test digits"
    same = sum(a["digit"] == b["digit"] for a, b in zip(rows, uploaded, strict=True))
    assert same >= 11, "a clean MNIST digit uploaded as an image reads as the raw array does"


def test_photo_of_a_digit_reads_like_the_clean_digit(live_service, trained, digits) -> None:
    client = live_service.client
    x, _y = digits
    clean = client.post("/predict", params={"experiment_id": trained["id"]},
                        json={"instances": [x[i].tolist() for i in range(20)]}).json()
    confident = [i for i, p in enumerate(clean["predictions"]) if max(p["probabilities"]) > 0.9]
    assert len(confident) >= 8
    photos = [(f"photo{i}.jpg", photo_like(x[i], i), "image/jpeg") for i in confident[:8]]
    response = predict_files(client, trained["id"], photos, include_image="true")
    assert response.status_code == 200, response.text
    seen = response.json()["predictions"]
    agree = sum(p["digit"] == clean["predictions"][i]["digit"]
                for i, p in zip(confident, seen, strict=False))
    assert agree >= 7, f"only {agree}/8 photos read as their clean digit"
    image = np.asarray(seen[0]["image"])
    assert image.shape == (28, 28) and image.max() == 255
    assert image[:, :4].max() < 40 and image[:4, :].max() < 40, "white digit on black, centred"


@pytest.mark.parametrize(("files", "status", "words"), [
    ([("notes.png", b"this is text, not a picture", "image/png")], 422, "notes.png"),
    ([("empty.png", b"", "image/png")], 422, "empty"),
])
def test_bad_uploads_are_refused_naming_the_input(live_service, trained, files, status,
                                                   words) -> None:
    response = predict_files(live_service.client, trained["id"], files)
    assert response.status_code == status, response.text
    assert words in response.text


@pytest.mark.parametrize(("body", "words"), [
    ({"instances": [[0] * 783]}, "instances.0: expected 784 values or 28 rows of 28"),
    ({"instances": [[300] * 784]}, "instances.0: pixel values must lie in 0..255"),
    ({"instances": [[-1] * 784]}, "0..255"),
    ({"instances": [["a"] * 784]}, "values must be numbers"),
    ({"instances": []}, "non-empty"),
    ({"rows": [[0] * 784]}, "instances"),
])
def test_bad_instances_get_422(live_service, trained, body, words) -> None:
    response = live_service.client.post("/predict", params={"experiment_id": trained["id"]},
                                        json=body)
    assert response.status_code == 422, response.text
    assert words in response.json()["message"]


def test_predict_on_unknown_unfinished_or_wrong_type(live_service, trained) -> None:
    client = live_service.client
    rows = {"instances": [[0] * 784]}
    missing = client.post("/predict", params={"experiment_id": "f" * 32}, json=rows)
    assert missing.status_code == 404
    running = submit(client, small_experiment(200, name="busy"))
    busy = client.post("/predict", params={"experiment_id": running["id"]}, json=rows)
    assert (busy.status_code == 409 and "queued" in busy.text) or "running" in busy.text
    client.post(f"/experiments/{running['id']}/cancel")
    wrong = client.post("/predict", params={"experiment_id": trained["id"]}, content=b"x",
                        headers={"content-type": "text/plain"})
    assert wrong.status_code == 415
    wait_until_done(client, running["id"])


@pytest.mark.parametrize("path", [
    "plots/history.png", "plots/weights.png", "plots/input_histogram.png", "plots/samples.png",
    "plots/confusion.png", "plots/mistakes.png", "confusion.png"])
def test_png_endpoints(live_service, trained, path) -> None:
    response = live_service.client.get(f"/experiments/{trained['id']}/{path}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG_MAGIC)
    width, height = Image.open(io.BytesIO(response.content)).size
    assert 200 <= width <= 4000 and 150 <= height <= 4000


def test_json_twins(live_service, trained) -> None:
    client = live_service.client
    base = f"/experiments/{trained['id']}"
    confusion = client.get(f"{base}/confusion").json()
    matrix = np.asarray(confusion["matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 1000  # the sample's test set
    assert confusion["test_accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    assert confusion["test_accuracy"] == pytest.approx(trained["metrics"]["test_accuracy"])
    assert all(m["label"] != m["predicted"] for m in confusion["worst_mistakes"])
    summary = client.get(f"{base}/summary").json()
    assert summary["total_params"] == trained["metrics"]["total_params"] == 795_010
    weights = client.get(f"{base}/weights").json()
    assert [w["layer"] for w in weights] == ["dense_1", "output"]
    assert sum(weights[0]["histogram_counts"]) == weights[0]["count"] == 784_000
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"ConfusionOut", "ModelSummary", "PredictOut", "SweepOut", "CompareOut"} <= set(schema)


def test_model_download_loads_with_safe_mode(live_service, trained, tmp_path, digits) -> None:
    import keras

    response = live_service.client.get(f"/experiments/{trained['id']}/model")
    assert response.status_code == 200
    path = tmp_path / "model.keras"
    path.write_bytes(response.content)
    model = keras.saving.load_model(path, safe_mode=True)
    x, _ = digits
    local = model.predict_on_batch(x[:5].astype("float32")).argmax(axis=1).tolist()
    served = live_service.client.post("/predict", params={"experiment_id": trained["id"]},
                                      json={"instances": x[:5].tolist()}).json()["predictions"]
    assert local == [p["digit"] for p in served]


def test_results_of_unfinished_job_are_409(live_service) -> None:
    client = live_service.client
    queued = submit(client, small_experiment(1, samples=100, name="cancelled-early"))
    client.post(f"/experiments/{queued['id']}/cancel")
    wait_until_done(client, queued["id"])
    for path in ("plots/weights.png", "confusion", "model", "weights"):
        assert client.get(f"/experiments/{queued['id']}/{path}").status_code == 409
    history_plot = client.get(f"/experiments/{queued['id']}/plots/history.png")
    assert history_plot.status_code == 200  # drawn from whatever epochs exist


def test_datasets_and_their_plots(live_service) -> None:
    client = live_service.client
    names = [d["name"] for d in client.get("/datasets").json()]
    assert names == ["mnist", "fashion_mnist"]
    for url in ("/datasets/mnist/samples.png", "/datasets/fashion_mnist/samples.png",
                "/datasets/mnist/histogram.png?scaling=standard&invert=true"):
        response = client.get(url)
        assert response.status_code == 200 and response.content.startswith(PNG_MAGIC), url
    assert client.get("/datasets/cifar/samples.png").status_code == 404
    assert client.get("/datasets/mnist/histogram.png?scaling=log").status_code == 422


def test_recipes_listed_and_runnable(live_service) -> None:
    client = live_service.client
    recipes = client.get("/recipes").json()
    assert {r["name"] for r in recipes} >= {"vanilla", "scaled", "deep", "dropout", "batchnorm"}
    assert all(r["demonstrates"] and r["chapter_reports"] for r in recipes)
    run = client.post("/recipes/overfit-5/run",
                      json={"training": {"epochs": 1}, "data": {"max_train_samples": 200}})
    assert run.status_code == 201 and run.json()["recipe"] == "overfit-5"
    assert client.post("/recipes/nope/run").status_code == 404
    bad = client.post("/recipes/scaled/run", json={"training": {"epochs": 0}})
    assert bad.status_code == 422 and "overrides.training.epochs" in bad.json()["message"]
    wait_until_done(client, run.json()["id"])


def test_sweep_of_four_points_then_compare(live_service) -> None:
    client = live_service.client
    body = {"name": "bs-x-lr",
            "base": {"recipe": "scaled", "overrides": {
                "training": {"epochs": 2}, "data": {"max_train_samples": 600}}},
            "grid": {"training.batch_size": [32, 300], "optimizer.learning_rate": [0.001, 0.01]}}
    created = client.post("/sweeps", json=body)
    assert created.status_code == 201, created.text
    sweep = created.json()
    assert len(sweep["runs"]) == 4
    points = [tuple(sorted(r["point"].items())) for r in sweep["runs"]]
    assert len(set(points)) == 4
    final = wait_for(lambda: (s := client.get(f"/sweeps/{sweep['id']}").json())
                     and all(r["status"] in TERMINAL for r in s["runs"]) and s, 300,
                     "sweep did not finish")
    assert final["status"] == {"succeeded": 4}
    assert all(r["test_accuracy"] is not None for r in final["runs"])
    ids = ",".join(r["experiment_id"] for r in final["runs"])
    compare = client.get("/compare", params={"ids": ids}).json()
    assert compare["differing_fields"] == ["optimizer.learning_rate", "training.batch_size"]
    for run in compare["runs"]:
        assert set(run["differs"]) == {"optimizer.learning_rate", "training.batch_size"}
        assert run["epochs_run"] == 2 and run["best_epoch"] in (0, 1)
    plot = client.get("/compare/plot.png", params={"ids": ids, "metric": "val_accuracy"})
    assert plot.status_code == 200 and plot.content.startswith(PNG_MAGIC)


def test_bad_sweeps_and_compares(live_service) -> None:
    client = live_service.client
    base = {"recipe": "scaled"}
    cases = [
        ({"base": base, "grid": {"training.bach_size": [1, 2]}}, "training.bach_size"),
        ({"base": base, "grid": {"training.batch_size": [0]}}, "greater than or equal to 1"),
        ({"base": base, "grid": {"training.epochs": list(range(1, 100))}}, "allowed 1..64"),
        ({"base": base, "grid": {}}, "grid"),
    ]
    for body, words in cases:
        response = client.post("/sweeps", json=body)
        assert response.status_code == 422, (body, response.text)
        assert words in json.dumps(response.json()), (words, response.text)
    assert client.get("/sweeps/" + "0" * 32).status_code == 404
    assert client.get("/compare", params={"ids": "f" * 32}).status_code == 404
    assert client.get("/compare", params={"ids": ""}).status_code == 422
