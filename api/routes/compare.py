"""/compare: runs side by side, showing only the spec fields that differ."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.auth import OwnerDep
from api.deps import SessionDep
from api.schemas import ErrorOut
from common import store

router = APIRouter(prefix="/compare", tags=["compare"])

MAX_RUNS = 20
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
IdsQuery = Annotated[str, Query(description="Comma-separated experiment ids (1 to 20)",
                                pattern=r"^[0-9a-f]{32}(,[0-9a-f]{32}){0,19}$")]


class CompareRun(BaseModel):
    id: str
    name: str | None
    status: str
    differs: dict[str, Any]
    epochs_run: int
    final: dict[str, float | None]
    best_val_accuracy: float | None
    best_epoch: int | None
    gap: float | None
    test_accuracy: float | None


class CompareOut(BaseModel):
    differing_fields: list[str]
    runs: list[CompareRun]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out
    if isinstance(value, list):
        out = {f"{prefix}length": len(value)}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}{i}."))
        return out
    return {prefix[:-1]: value}


def differing(specs: list[dict[str, Any]]) -> list[str]:
    flat = [flatten({k: v for k, v in s.items() if k not in ("name", "description")}) for s in specs]
    keys = sorted(set().union(*flat))
    return [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]


def _load(session: Any, ids: str, owner: str | None) -> list[tuple[Any, dict[str, list]]]:
    wanted = list(dict.fromkeys(ids.split(",")))
    found = store.experiments_by_ids(session, ids=wanted, owner=owner)
    missing = [i for i in wanted if i not in {e.id for e in found}]
    if missing:
        raise HTTPException(404, f"experiments not found: {', '.join(missing)}")
    return [(e, store.history(session, experiment_id=e.id)) for e in found]


@router.get("", response_model=CompareOut, responses={404: {"model": ErrorOut}})
def compare(ids: IdsQuery, session: SessionDep, owner: OwnerDep) -> CompareOut:
    runs = _load(session, ids, owner)
    fields = differing([e.spec for e, _ in runs])
    out = []
    for experiment, history in runs:
        flat = flatten(experiment.spec)
        val = [v for v in history["val_accuracy"] if v is not None]
        best = max(range(len(val)), key=val.__getitem__) if val else None
        final = {m: (history[m][-1] if history[m] else None) for m in METRICS}
        gap = (final["accuracy"] - final["val_accuracy"]
               if final["accuracy"] is not None and final["val_accuracy"] is not None else None)
        out.append(CompareRun(
            id=experiment.id, name=experiment.name, status=experiment.status,
            differs={f: flat.get(f) for f in fields}, epochs_run=len(history["epoch"]),
            final=final, best_val_accuracy=val[best] if best is not None else None,
            best_epoch=best, gap=gap,
            test_accuracy=(experiment.metrics or {}).get("test_accuracy")))
    return CompareOut(differing_fields=fields, runs=out)


@router.get("/plot.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorOut}},
            summary="The runs' curves of one metric overlaid; the legend names what differs")
async def compare_plot(ids: IdsQuery, session: SessionDep, owner: OwnerDep,
                       metric: Annotated[str, Query(pattern="^(val_)?(loss|accuracy)$")]
                       = "val_accuracy") -> Response:
    from trainer.plots import overlay_png

    runs = _load(session, ids, owner)
    fields = differing([e.spec for e, _ in runs])
    series = {}
    for experiment, history in runs:
        flat = flatten(experiment.spec)
        what = ", ".join(f"{f}={flat.get(f)}" for f in fields) or experiment.id[:8]
        series[f"{experiment.name or experiment.id[:8]}: {what}" if not fields else what] = (
            history[metric])
    png = await run_in_threadpool(overlay_png, series, metric, f"{metric} per epoch")
    return Response(content=png, media_type="image/png")
