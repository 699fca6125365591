"""Bad input never hurts: every case gets its 4xx quickly, and nothing stored is harmed."""

from __future__ import annotations

import io
import struct
import time
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
import service_helpers as svc
from fastapi.testclient import TestClient
from PIL import Image

from api.main import create_app
from cli import redis_server
from common import store
from common.db import session_scope
from common.settings import Settings
from trainer.recipes import recipe_spec
from trainer.train import train


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Iterator[Settings]:
    instance = svc.new_instance()
    yield Settings(home=tmp_path_factory.mktemp("bad-input"), instance=instance,
                   redis_url=svc.redis_url())
    svc.forget_instance(svc.redis_url(), instance)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def trained_id(client, settings) -> str:
    """A succeeded experiment with a real saved model, made without a worker."""
    spec = recipe_spec("scaled", {"training": {"epochs": 1, "batch_size": 300},
                                  "data": {"max_train_samples": 300, "max_test_samples": 100}})
    with session_scope(settings.database) as session:
        experiment = store.create_experiment(session, spec=spec.model_dump(mode="json"),
                                             spec_hash=spec.spec_hash(), epochs_total=1)
        job = experiment.id
        attempt = store.start_attempt(session, experiment_id=job)
    train(spec, settings.experiment_dir(job))
    with session_scope(settings.database) as session:
        store.finish(session, experiment_id=job, attempt=attempt, status="succeeded", metrics={})
    return job


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height."""
    data = bytearray(png(np.zeros((8, 8))))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def upload(client, job: str, files, **kwargs):
    return client.post("/predict", params={"experiment_id": job},
                       files=[("files", f) for f in files], **kwargs)


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "bad\x00name"}, "name"),
    ({"training": {"epochs": 10**100}}, "training.epochs"),
    ({"training": {"batch_size": -(10**30)}}, "training.batch_size"),
    ({"model": {"hidden": [{"type": "dense", "units": 10**9}]}}, "model.hidden.0.dense.units"),
    ({"model": {"hidden": [{"type": "dense", "units": 8}] * 17}}, "model.hidden"),
    ({"training": {"epochs": 2000}}, "training.epochs"),
    ({"training": "fast"}, "training"),
    ({"training": {"epochs": True}}, "training.epochs"),
    ({"optimizer": {"name": "adam", "learning_rate": "1e-3"}}, "optimizer.adam.learning_rate"),
    ({"data": {"max_train_samples": 10, "scaling": "divide255"}, "training": {"batch_size": 32}},
     ""),
])
def test_bad_specs_are_422_never_500(client, body, field) -> None:
    response = client.post("/experiments", json=body)
    assert response.status_code == 422, response.text
    if field:
        assert field in response.json()["message"]


def test_deep_nesting_is_422(client) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    response = client.post("/experiments", content=deep,
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    nested: dict = {}
    for _ in range(200):
        nested = {"a": nested}
    response = client.post("/experiments", json={"recipe": "scaled", "overrides": nested})
    assert response.status_code == 422 and "overrides.a" in response.json()["message"]


def test_body_limit_is_413(client, settings) -> None:
    before = client.get("/experiments").json()["total"]
    big = b"x" * (settings.max_request_bytes + 1)
    response = client.post("/experiments", content=big,
                           headers={"content-type": "application/json"})
    assert response.status_code == 413

    def chunks():
        for _ in range(settings.max_request_bytes // 65536 + 2):
            yield b"y" * 65536

    streamed = client.post("/experiments", content=chunks(),
                           headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert client.get("/experiments").json()["total"] == before


def test_too_many_images_or_instances(client, settings, trained_id) -> None:
    many = [[0] * 784] * (settings.max_images_per_request + 1)
    response = client.post("/predict", params={"experiment_id": trained_id},
                           json={"instances": many})
    assert response.status_code == 422 and "at most" in response.json()["message"]
    files = [(f"{i}.png", png(np.zeros((28, 28))), "image/png")
             for i in range(settings.max_images_per_request + 1)]
    assert upload(client, trained_id, files).status_code in (400, 413, 422)


def test_decompression_bomb_refused_fast(client, trained_id) -> None:
    started = time.perf_counter()
    response = upload(client, trained_id, [("bomb.png", bomb_png(20000, 20000), "image/png")])
    assert time.perf_counter() - started < 1.0
    assert response.status_code == 422
    assert "bomb.png" in response.json()["message"] and "20000x20000" in response.text


@pytest.mark.parametrize(("name", "data"), [
    ("truncated.png", png(np.random.default_rng(1).integers(0, 256, (64, 64)))[:1500]),
    ("renamed.png", b"%PDF-1.4 not an image at all"),
    ("empty.png", b""),
    ("random.jpg", bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8))),
])
def test_unreadable_uploads_name_the_file(client, trained_id, name, data) -> None:
    started = time.perf_counter()
    response = upload(client, trained_id, [(name, data, "image/png")])
    assert time.perf_counter() - started < 1.0
    assert response.status_code == 422
    assert name in response.json()["message"]


def test_malformed_multipart_is_4xx(client, trained_id) -> None:
    response = client.post("/predict", params={"experiment_id": trained_id},
                           content=b"--nope\r\ngarbage",
                           headers={"content-type": "multipart/form-data; boundary=XYZ"})
    assert 400 <= response.status_code < 500
    response = client.post("/predict", params={"experiment_id": trained_id},
                           content=b"whatever", headers={"content-type": "multipart/form-data"})
    assert 400 <= response.status_code < 500


def test_predict_still_works_after_bad_input(client, trained_id) -> None:
    upload(client, trained_id, [("bomb.png", bomb_png(20000, 20000), "image/png")])
    response = client.post("/predict", params={"experiment_id": trained_id},
                           json={"instances": [[0] * 784]})
    assert response.status_code == 200


@pytest.mark.parametrize("path", [
    "/experiments/..%2F..%2Fetc%2Fpasswd", "/experiments/%2e%2e/history",
    "/experiments/{id}/plots/..%2F..%2Fmodel.png", "/experiments/{id}/plots/..%2Fresult.png",
    "/experiments/{id}%2F..%2F..%2Fsecret/summary", "/datasets/..%2Fmnist/samples.png",
    "/datasets/....%2F%2F/histogram.png", "/recipes/..%2F..%2Fetc", "/sweeps/..%2F..",
    "/experiments/{id}/plots/%2e%2e%2f%2e%2e%2fspec.png",
])
def test_traversal_tricks_are_404(client, trained_id, path) -> None:
    response = client.get(path.replace("{id}", trained_id))
    assert response.status_code == 404, (path, response.status_code)


def test_keys_protect_everything_but_health(tmp_path) -> None:
    instance = svc.new_instance()
    app = create_app(Settings(home=tmp_path, instance=instance, redis_url=svc.redis_url(),
                              api_keys="alpha-key, beta-key"))
    alpha = {"Authorization": "Bearer alpha-key"}
    beta = {"Authorization": "Bearer beta-key"}
    body = {"recipe": "scaled", "overrides": {"training": {"epochs": 1}}}
    try:
        with TestClient(app) as client:
            assert client.get("/health").status_code == 200
            for path in ("/experiments", "/recipes", "/datasets", "/compare?ids=" + "0" * 32):
                response = client.get(path)
                assert response.status_code == 401, path
                assert response.headers["www-authenticate"] == "Bearer"
            assert client.get("/experiments", headers={"Authorization": "Bearer nope"}
                              ).status_code == 401
            assert client.get("/experiments", headers={"Authorization": "alpha-key"}
                              ).status_code == 401
            mine = client.post("/experiments", json=body, headers=alpha).json()["id"]
            assert client.get(f"/experiments/{mine}", headers=alpha).status_code == 200
            assert client.get(f"/experiments/{mine}", headers=beta).status_code == 404
            assert client.get(f"/experiments/{mine}/history", headers=beta).status_code == 404
            assert client.post(f"/experiments/{mine}/cancel", headers=beta).status_code == 404
            assert client.get("/experiments", headers=beta).json()["total"] == 0
            assert client.get("/experiments", headers=alpha).json()["total"] == 1
            assert client.get(f"/compare?ids={mine}", headers=beta).status_code == 404
    finally:
        svc.forget_instance(svc.redis_url(), instance)


def test_broker_down_is_a_quick_503_and_harms_nothing(tmp_path) -> None:
    process, url = redis_server.start_private(tmp_path / "redis")
    settings = Settings(home=tmp_path, instance=svc.new_instance(), redis_url=url,
                        broker_timeout_seconds=1.0)
    body = {"recipe": "scaled", "overrides": {"training": {"epochs": 1}}}
    try:
        with TestClient(create_app(settings)) as client:
            kept = client.post("/experiments", json=body).json()
            process.kill()
            process.wait()
            started = time.perf_counter()
            response = client.post("/experiments", json=body)
            assert time.perf_counter() - started < 5
            assert response.status_code == 503 and "broker" in response.json()["detail"]
            page = client.get("/experiments").json()
            assert [e["id"] for e in page["items"]] == [kept["id"]]
            assert page["items"][0]["status"] == "queued"
            assert client.get("/health").json()["status"] == "degraded"
    finally:
        process.kill()
