"""/predict: uploaded images (photos welcome) or TF-Serving-style pixel rows, through a model."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api import artifacts
from api.auth import owner_from_headers
from api.routes.experiments import find_experiment
from api.schemas import ErrorOut, ValidationErrorOut
from common.db import session_factory
from common.settings import Settings
from trainer.data import CLASS_NAMES

router = APIRouter(tags=["predict"])


class Prediction(BaseModel):
    input: str = Field(description="The file name, or instances[i]")
    digit: int = Field(description="The most probable class, 0-9")
    label: str = Field(description="The class's name (the digit itself for MNIST)")
    probabilities: list[float]
    image: list[list[int]] | None = Field(None, description="The 28x28 input the model saw")


class PredictOut(BaseModel):
    experiment_id: str
    predictions: list[Prediction]


REQUEST_BODY = {
    "content": {
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["files"],
            "properties": {"files": {"type": "array",
                                     "items": {"type": "string", "format": "binary"}}}}},
        "application/json": {"schema": {
            "type": "object", "required": ["instances"], "additionalProperties": False,
            "properties": {"instances": {
                "type": "array", "minItems": 1,
                "description": "Each 784 values or 28 rows of 28, raw pixels 0-255",
                "items": {"type": "array"}}}}},
    },
    "required": True,
}


def _invalid(loc: tuple[Any, ...], msg: str, kind: str = "value_error") -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", *loc), "msg": msg, "type": kind}])


def instances_to_pixels(payload: Any, limit: int) -> np.ndarray:
    """TF Serving rows (784 values, or 28 rows of 28) as (n, 28, 28) float32; 422 otherwise.

    Values are rounded to whole pixel values, as an image would hold them, so every engine
    behind the model sees the same input.
    """
    if not isinstance(payload, dict) or set(payload) != {"instances"}:
        raise _invalid((), "expected a JSON object with the single field 'instances'")
    rows = payload["instances"]
    if not isinstance(rows, list) or not rows:
        raise _invalid(("instances",), "must be a non-empty list")
    if len(rows) > limit:
        raise _invalid(("instances",), f"at most {limit} instances per request")
    try:  # the common case in one conversion; a ragged or odd body gets row-by-row messages
        array = np.array(rows, dtype=np.float64)
        if array.shape[1:] not in ((784,), (28, 28)):
            raise ValueError
    except (TypeError, ValueError):
        array = np.stack([_row(i, row) for i, row in enumerate(rows)])
    bad = ~np.isfinite(array) | (array < 0) | (array > 255)
    if bad.any():
        first = int(np.flatnonzero(bad.reshape(len(array), -1).any(axis=1))[0])
        raise _invalid(("instances", first), "pixel values must lie in 0..255")
    return np.rint(array).reshape(-1, 28, 28).astype(np.float32)


def _row(i: int, row: Any) -> np.ndarray:
    try:
        array = np.asarray(row, dtype=np.float64)
    except (TypeError, ValueError):
        raise _invalid(("instances", i), "values must be numbers") from None
    if array.shape not in ((784,), (28, 28)):
        raise _invalid(("instances", i),
                       f"expected 784 values or 28 rows of 28, got shape {list(array.shape)}")
    return array.reshape(784)


async def uploads_to_pixels(request: Request, limit: int) -> tuple[np.ndarray, list[str]]:
    from api.imaging import ImageError, image_to_mnist

    form = await request.form(max_files=limit, max_fields=limit)
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        raise _invalid(("files",), "upload at least one image in the multipart field 'files'")
    images, names = [], []
    for i, upload in enumerate(files):
        data = await upload.read()
        name = upload.filename or f"files[{i}]"
        try:
            images.append(await run_in_threadpool(image_to_mnist, data))
        except ImageError as exc:
            raise _invalid(("files", i), f"{name}: {exc}", "image_error") from None
        names.append(name)
    return np.stack(images).astype(np.float32), names


@router.post(
    "/predict",
    response_model=PredictOut,
    openapi_extra={"requestBody": REQUEST_BODY},
    responses={400: {"model": ErrorOut, "description": "Malformed multipart body"},
               404: {"model": ErrorOut}, 409: {"model": ErrorOut, "description": "Not succeeded"},
               413: {"model": ErrorOut}, 415: {"model": ErrorOut},
               422: {"model": ValidationErrorOut}},
    summary="Classify uploaded images or pixel arrays with a trained model",
)
async def predict(
    request: Request,
    experiment_id: Annotated[str, Query(max_length=64)],
    include_image: Annotated[bool, Query(description="Return the 28x28 input as seen")] = False,
) -> dict[str, Any]:
    # Settings, caller and session are taken here rather than through dependencies: this is
    # the hot path, and each dependency costs FastAPI some bookkeeping per request.
    settings: Settings = request.app.state.settings
    owner = owner_from_headers(request, settings)
    with session_factory(settings.database)() as session:
        experiment = find_experiment(session, experiment_id, owner)
        path = artifacts.model_path(settings, experiment)
        dataset = experiment.spec.get("data", {}).get("dataset", "mnist")
    content_type = request.headers.get("content-type", "")
    limit = settings.max_images_per_request
    if content_type.startswith("multipart/form-data"):
        pixels, names = await uploads_to_pixels(request, limit)
    elif content_type.startswith("application/json"):
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise _invalid((), "body is not valid JSON", "json_invalid") from None
        pixels = instances_to_pixels(payload, limit)
        names = [f"instances[{i}]" for i in range(len(pixels))]
    else:
        raise HTTPException(415, "send multipart/form-data with files, or JSON with instances")
    cache = request.app.state.models
    predictor = cache.get(experiment.id, path) if experiment.id in cache else (
        await run_in_threadpool(cache.get, experiment.id, path))
    probabilities = predictor(pixels) if len(pixels) <= 32 else (
        await run_in_threadpool(predictor, pixels))
    classes = CLASS_NAMES.get(dataset, CLASS_NAMES["mnist"])
    digits = probabilities.argmax(axis=1).tolist()
    images = pixels.astype(np.uint8).tolist() if include_image else [None] * len(pixels)
    # A plain dict: FastAPI validates and serialises it against PredictOut in pydantic-core,
    # without a Python object per prediction.
    return {"experiment_id": experiment.id, "predictions": [
        {"input": name, "digit": digit, "label": classes[digit],
         "probabilities": [round(v, 6) for v in row], "image": image}
        for name, digit, row, image in zip(names, digits, probabilities.astype(np.float64).tolist(),
                                           images, strict=True)]}
