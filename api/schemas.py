"""Request and response bodies of the API (the spec itself lives in trainer.spec)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from trainer.spec import ExperimentSpec
from trainer.summary import ModelSummary


class RecipeRequest(BaseModel):
    """Start from a recipe of the catalogue; `overrides` is a partial spec merged into it."""

    model_config = ConfigDict(extra="forbid")

    recipe: str = Field(..., max_length=64, examples=["scaled"])
    overrides: dict[str, Any] = Field(
        default_factory=dict, examples=[{"training": {"epochs": 3}}])


def _body_kind(value: Any) -> str:
    return "recipe-request" if isinstance(value, dict) and "recipe" in value else "experiment-spec"


ExperimentRequest = Annotated[
    Annotated[RecipeRequest, Tag("recipe-request")] | Annotated[ExperimentSpec, Tag("experiment-spec")],
    Discriminator(_body_kind),
]


class Links(BaseModel):
    self: str
    history: str
    events: str
    cancel: str


class ExperimentOut(BaseModel):
    id: str
    name: str | None
    recipe: str | None
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    spec: dict[str, Any]
    spec_hash: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    epoch: int = Field(description="Epochs finished so far.")
    epochs: int = Field(description="Epochs the spec asks for.")
    attempt: int
    cancel_requested: bool
    metrics: dict[str, Any] | None = Field(description="Final metrics once the job has ended.")
    error: str | None
    sweep_id: str | None
    links: Links


class ExperimentPage(BaseModel):
    items: list[ExperimentOut]
    total: int
    limit: int
    offset: int


class DryRunOut(BaseModel):
    valid: Literal[True] = True
    spec: dict[str, Any]
    spec_hash: str
    summary: ModelSummary


class HistoryOut(BaseModel):
    """Keras's History.history shape: one list per metric, one entry per finished epoch."""

    epoch: list[int]
    loss: list[float]
    accuracy: list[float]
    val_loss: list[float | None]
    val_accuracy: list[float | None]
    learning_rate: list[float | None]
    seconds: list[float]


class ErrorOut(BaseModel):
    detail: str


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    detail: list[ValidationErrorItem]
    message: str = Field(description="All problems in one line: field: rule; field: rule")


class ComponentHealth(BaseModel):
    ok: bool
    detail: str | None = None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    api: ComponentHealth
    database: ComponentHealth
    broker: ComponentHealth
    workers: list[str]
