"""/predict: uploaded images (photos welcome) or TF-Serving-style pixel rows, through a model."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api import artifacts
from api.auth import OwnerDep
from api.deps import SessionDep, SettingsDep
from api.routes.experiments import find_experiment
from api.schemas import ErrorOut, ValidationErrorOut
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
    """TF Serving rows (784 values, or 28 rows of 28) as (n, 28, 28) float32; 422 otherwise."""
    if not isinstance(payload, dict) or set(payload) != {"instances"}:
        raise _invalid((), "expected a JSON object with the single field 'instances'")
    rows = payload["instances"]
    if not isinstance(rows, list) or not rows:
        raise _invalid(("instances",), "must be a non-empty list")
    if len(rows) > limit:
        raise _invalid(("instances",), f"at most {limit} instances per request")
    images = []
    for i, row in enumerate(rows):
        try:
            array = np.asarray(row, dtype=np.float64)
        except (TypeError, ValueError):
            raise _invalid(("instances", i), "values must be numbers") from None
        if array.shape not in ((784,), (28, 28)):
            raise _invalid(("instances", i),
                           f"expected 784 values or 28 rows of 28, got shape {list(array.shape)}")
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
            raise _invalid(("instances", i), "pixel values must lie in 0..255")
        images.append(array.reshape(28, 28))
    return np.stack(images).astype(np.float32)


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
    session: SessionDep,
    owner: OwnerDep,
    settings: SettingsDep,
    experiment_id: Annotated[str, Query(max_length=64)],
    include_image: Annotated[bool, Query(description="Return the 28x28 input as seen")] = False,
) -> PredictOut:
    experiment = find_experiment(session, experiment_id, owner)
    path = artifacts.model_path(settings, experiment)
    dataset = experiment.spec.get("data", {}).get("dataset", "mnist")
    session.close()  # nothing more to read; free the connection while the model works
    content_type = request.headers.get("content-type", "")
    limit = settings.max_images_per_request
    if content_type.startswith("multipart/form-data"):
        pixels, names = await uploads_to_pixels(request, limit)
    elif content_type.startswith("application/json"):
        try:
            payload = await request.json()
        except ValueError:
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
    return PredictOut(experiment_id=experiment.id, predictions=[
        Prediction(input=name, digit=int(p.argmax()), label=classes[int(p.argmax())],
                   probabilities=[round(float(v), 6) for v in p],
                   image=pixels[i].astype(np.uint8).tolist() if include_image else None)
        for i, (name, p) in enumerate(zip(names, probabilities, strict=True))])
