"""/experiments through TestClient: validation, 404s, listing, filtering, dry run, queueing."""

from __future__ import annotations

import json

import pytest
import redis

SMALL = {"recipe": "scaled", "overrides": {"training": {"epochs": 2}}}


def queued_messages(settings) -> list[dict]:
    client = redis.Redis.from_url(settings.redis_url)
    return [json.loads(m) for m in client.lrange(f"{settings.instance}:{settings.queue}", 0, -1)]


def test_submit_recipe_stores_and_enqueues(client, settings) -> None:
    response = client.post("/experiments", json=SMALL)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued" and body["recipe"] == "scaled" and body["epochs"] == 2
    assert response.headers["location"] == f"/experiments/{body['id']}"
    assert body["links"]["history"] == f"/experiments/{body['id']}/history"
    messages = queued_messages(settings)
    assert len(messages) == 1
    assert messages[0]["headers"]["task"] == "mnistlab.train"
    assert body["id"] in messages[0]["headers"]["argsrepr"]
    assert client.get(f"/experiments/{body['id']}").json()["spec"]["training"]["epochs"] == 2


def test_submit_full_spec(client) -> None:
    spec = {"name": "mine", "model": {"hidden": [{"type": "dense", "units": 64},
                                                 {"type": "dropout", "rate": 0.2}]},
            "optimizer": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
            "training": {"epochs": 3, "batch_size": 128}}
    body = client.post("/experiments", json=spec).json()
    assert body["name"] == "mine" and body["recipe"] is None
    assert body["spec"]["optimizer"] == {"name": "sgd", "learning_rate": 0.05,
                                         "momentum": 0.9, "nesterov": False}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"trainig": {"epochs": 3}}, "trainig", "Extra inputs are not permitted"),
        ({"training": {"epochs": 0}}, "training.epochs", "greater than or equal to 1"),
        ({"training": {"epochs": "ten"}}, "training.epochs", "valid integer"),
        ({"training": {"batch_size": 10**40}}, "training.batch_size", "less than or equal"),
        ({"model": {"hidden": [{"type": "dense", "unit": 5}]}}, "model.hidden.0.dense.unit",
         "Extra inputs"),
        ({"optimizer": {"name": "adamm"}}, "optimizer", "does not match any of the expected tags"),
        ({"name": "a\x00b"}, "name", "pattern"),
        ({"recipe": "scaled", "overrides": {"training": {"epochs": -1}}},
         "overrides.training.epochs", "greater than or equal to 1"),
        ({"recipe": "scaled", "overrides": {"dat": {}}}, "overrides.dat", "Extra inputs"),
        ({"recipe": "no-such"}, "recipe", "unknown recipe"),
        ({"recipe": "scaled", "extra": 1}, "extra", "Extra inputs"),
    ],
)
def test_bad_specs_get_422_naming_the_field(client, settings, body, field, words) -> None:
    response = client.post("/experiments", json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    locations = [".".join(str(p) for p in e["loc"][1:]) for e in payload["detail"]]
    assert field in locations, locations
    assert words in payload["message"]
    assert field in payload["message"]
    assert queued_messages(settings) == []
    assert client.get("/experiments").json()["total"] == 0


def test_body_that_is_not_json_is_422(client) -> None:
    response = client.post("/experiments", content=b"{not json",
                           headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_dry_run_summarises_without_queueing(client, settings) -> None:
    response = client.post("/experiments?dry_run=true", json={"recipe": "vanilla"})
    assert response.status_code == 200
    summary = response.json()["summary"]
    params = {row["name"]: row["params"] for row in summary["layers"]}
    assert params["dense_1"] == 785_000 and params["output"] == 10_010
    assert summary["total_params"] == 795_010
    deep = client.post("/experiments?dry_run=true", json={"recipe": "deep"}).json()
    assert deep["summary"]["total_params"] == 785_000 + 2 * 1_001_000 + 10_010
    assert queued_messages(settings) == []
    assert client.get("/experiments").json()["total"] == 0


@pytest.mark.parametrize("path", ["/experiments/0123456789abcdef0123456789abcdef",
                                  "/experiments/nope", "/experiments/..%2F..%2Fetc",
                                  "/experiments/0123456789abcdef0123456789abcdef/history",
                                  "/experiments/0123456789abcdef0123456789abcdef/events"])
def test_unknown_ids_are_404(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "not found" in response.json()["detail"].lower()


def test_cancel_and_delete_unknown_are_404(client) -> None:
    missing = "0123456789abcdef0123456789abcdef"
    assert client.post(f"/experiments/{missing}/cancel").status_code == 404
    assert client.delete(f"/experiments/{missing}").status_code == 404


def test_list_newest_first_paginated_and_filtered(client) -> None:
    ids = []
    for name, recipe in [("a", "scaled"), ("b", "deep"), ("c", "scaled")]:
        body = {"recipe": recipe, "overrides": {"name": name, "training": {"epochs": 1}}}
        ids.append(client.post("/experiments", json=body).json()["id"])
    page = client.get("/experiments").json()
    assert page["total"] == 3
    assert [e["id"] for e in page["items"]] == ids[::-1]
    second = client.get("/experiments?limit=2&offset=2").json()
    assert [e["id"] for e in second["items"]] == [ids[0]] and second["total"] == 3
    assert [e["name"] for e in client.get("/experiments?recipe=scaled").json()["items"]] == [
        "c", "a"]
    assert [e["id"] for e in client.get("/experiments?name=b").json()["items"]] == [ids[1]]
    client.post(f"/experiments/{ids[0]}/cancel")
    assert [e["id"] for e in client.get("/experiments?status=cancelled").json()["items"]] == [
        ids[0]]
    assert client.get("/experiments?status=queued").json()["total"] == 2
    assert client.get("/experiments?status=bogus").status_code == 422
    assert client.get("/experiments?limit=0").status_code == 422


def test_queued_job_cancels_at_once_and_cannot_be_deleted_before(client) -> None:
    experiment = client.post("/experiments", json=SMALL).json()
    assert client.delete(f"/experiments/{experiment['id']}").status_code == 409
    cancelled = client.post(f"/experiments/{experiment['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"] is not None
    assert client.post(f"/experiments/{experiment['id']}/cancel").status_code == 409
    assert client.delete(f"/experiments/{experiment['id']}").status_code == 204
    assert client.get(f"/experiments/{experiment['id']}").status_code == 404


def test_history_of_a_new_job_is_empty_keras_shape(client) -> None:
    experiment = client.post("/experiments", json=SMALL).json()
    history = client.get(f"/experiments/{experiment['id']}/history").json()
    assert history == {"epoch": [], "loss": [], "accuracy": [], "val_loss": [],
                       "val_accuracy": [], "learning_rate": [], "seconds": []}


def test_openapi_documents_errors(client) -> None:
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/experiments"]["post"]
    assert {"201", "422", "503"} <= set(post["responses"])
    assert "404" in schema["paths"]["/experiments/{experiment_id}"]["get"]["responses"]


def test_repeated_query_parameter_is_422(client) -> None:
    response = client.get("/experiments?status=queued&status=failed")
    assert response.status_code == 422
    assert "status: given more than once" in response.json()["message"]
    typo = client.get("/experiments?stauts=queued")
    assert typo.status_code == 422 and "stauts: unknown query parameter" in typo.json()["message"]
