"""The whole service over HTTP: submit, watch, finish, cancel, stream events."""

from __future__ import annotations

import json
import time

import service_helpers as svc
from service_helpers import TERMINAL, small_experiment, submit, wait_until_done


def test_history_grows_while_running_then_succeeds(live_service) -> None:
    client = live_service.client
    epochs = 6
    created = submit(client, small_experiment(epochs, name="grows"))
    assert created["status"] == "queued" and created["epochs"] == epochs
    seen_partial = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        experiment = client.get(f"/experiments/{created['id']}").json()
        history = client.get(f"/experiments/{created['id']}/history").json()
        if experiment["status"] == "running" and 0 < len(history["epoch"]) < epochs:
            seen_partial.append(len(history["epoch"]))
        if experiment["status"] in TERMINAL:
            break
        time.sleep(0.05)
    assert seen_partial, "never saw a partial history while the job ran"
    assert experiment["status"] == "succeeded", experiment["error"]
    history = client.get(f"/experiments/{created['id']}/history").json()
    assert history["epoch"] == list(range(epochs))
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    metrics = experiment["metrics"]
    assert 0.8 < metrics["test_accuracy"] <= 1.0
    assert metrics["epochs_run"] == epochs and experiment["epoch"] == epochs
    assert metrics["test_accuracy"] == history["val_accuracy"][-1] or abs(
        metrics["test_accuracy"] - history["val_accuracy"][-1]) < 1e-3


def test_cancel_running_job_keeps_finished_epochs(live_service) -> None:
    client = live_service.client
    created = submit(client, small_experiment(200, name="to-cancel"))
    svc.wait_for(lambda: client.get(f"/experiments/{created['id']}").json()["epoch"] >= 2,
                 120, "job never reached epoch 2")
    cancelled = client.post(f"/experiments/{created['id']}/cancel")
    assert cancelled.status_code == 200
    asked_at = cancelled.json()["epoch"]
    final = wait_until_done(client, created["id"], 60)
    assert final["status"] == "cancelled"
    history = client.get(f"/experiments/{created['id']}/history").json()
    done = len(history["epoch"])
    assert history["epoch"] == list(range(done)), "finished epochs kept, no gaps"
    assert final["epoch"] == done
    assert asked_at <= done <= asked_at + 1, "stopped within one epoch of the request"
    again = client.post(f"/experiments/{created['id']}/cancel")
    assert again.status_code == 409


def test_cancel_queued_job_never_starts(live_service) -> None:
    client = live_service.client
    blocker = submit(client, small_experiment(200, name="blocker"))
    queued = submit(client, small_experiment(2, name="never-runs"))
    response = client.post(f"/experiments/{queued['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    client.post(f"/experiments/{blocker['id']}/cancel")
    wait_until_done(client, blocker["id"], 120)
    time.sleep(1.0)  # the worker now takes the cancelled job's message and must skip it
    final = client.get(f"/experiments/{queued['id']}").json()
    assert final["status"] == "cancelled" and final["started_at"] is None
    assert client.get(f"/experiments/{queued['id']}/history").json()["epoch"] == []


def test_events_stream_one_event_per_epoch_in_order(live_service) -> None:
    client = live_service.client
    epochs = 4
    created = submit(client, small_experiment(epochs, samples=1000, name="sse"))
    events: list[tuple[str, dict]] = []
    with client.stream("GET", f"/experiments/{created['id']}/events", timeout=120) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                events.append((name, json.loads(line.split(":", 1)[1])))
    epoch_events = [data["epoch"] for kind, data in events if kind == "epoch"]
    assert epoch_events == list(range(epochs))
    statuses = [data["status"] for kind, data in events if kind == "status"]
    assert statuses[-1] == "succeeded"
    assert events[-1][0] == "end"


def test_delete_removes_record_and_artifacts(live_service) -> None:
    client = live_service.client
    created = submit(client, small_experiment(1, samples=500, name="to-delete"))
    wait_until_done(client, created["id"])
    folder = live_service.home / "artifacts" / created["id"]
    assert (folder / "model.keras").is_file()
    assert client.delete(f"/experiments/{created['id']}").status_code == 204
    assert client.get(f"/experiments/{created['id']}").status_code == 404
    assert not folder.exists()


def test_health_reports_database_broker_and_worker(live_service) -> None:
    health = live_service.client.get("/health").json()
    assert health["status"] == "ok"
    assert health["database"]["ok"] and health["broker"]["ok"]
    assert any(name.startswith(live_service.instance) for name in health["workers"])
