"""/predict: uploaded images (photos welcome) or TF-Serving-style pixel rows, through a model."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api import artifacts
from api.auth import current_owner
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


# The common request, {"instances": [[784 integers], ...]}, read straight from the bytes: json.loads
# and a numpy array per row cost ~10 ms for 100 images, this ~1 ms. Anything else (28x28 rows,
# decimals, exponents, out-of-range or malformed values, other keys) returns None and takes the
# general path, which also words every error; so a body read here always means what json.loads
# and instances_to_pixels would have made of it.
_JSON_SPACE = b" \t\n\r"
_PLAIN_CHARS = b"0123456789,[]" + _JSON_SPACE
_PLAIN_HEAD = re.compile(rb'[ \t\n\r]*\{[ \t\n\r]*"instances"[ \t\n\r]*:[ \t\n\r]*\[')
_OPEN, _CLOSE, _COMMA, _ZERO = b"[],0"


def _digit_runs(text: np.ndarray) -> int:
    digit = (text >= _ZERO) & (text <= _ZERO + 9)
    return int(digit[0]) + int(np.count_nonzero(digit[1:] & ~digit[:-1]))


def plain_instances(body: bytes, limit: int) -> np.ndarray | None:
    """(n, 28, 28) float32 pixels when the body is exactly {"instances": rows} with 1..limit rows
    of 784 integers 0..255 in plain JSON notation; None for any other body."""
    head = _PLAIN_HEAD.match(body)
    end = len(body.rstrip(_JSON_SPACE)) - 1  # the closing brace of the object
    if head is None or end < head.end() or body[end] != ord("}"):
        return None
    end = len(body[:end].rstrip(_JSON_SPACE)) - 1  # the bracket that closes "instances"
    if end < head.end() or body[end] != _CLOSE:
        return None
    rows_text = body[head.end():end]
    if not rows_text or rows_text.translate(None, _PLAIN_CHARS):  # a byte of another kind
        return None
    compact = rows_text.translate(None, _JSON_SPACE)
    c = np.frombuffer(compact, dtype=np.uint8)
    if len(c) < 3 or c[0] != _OPEN or c[-1] != _CLOSE:
        return None
    if _digit_runs(c) != _digit_runs(np.frombuffer(rows_text, dtype=np.uint8)):
        return None  # dropping the spaces joined two numbers ("1 2")
    opens, closes, commas = c == _OPEN, c == _CLOSE, c == _COMMA
    digit = ~(opens | closes | commas)
    # The grammar, as rules on neighbours: "[" after "," (or first) and before a digit; "]"
    # after a digit and before "," (or last); "," between digits or between "]" and "[".
    # Together: rows of one or more numbers, no nesting, nothing empty.
    if ((opens[1:] & ~commas[:-1]).any() or (opens[:-1] & ~digit[1:]).any()
            or (closes[1:] & ~digit[:-1]).any() or (closes[:-1] & ~commas[1:]).any()
            or (commas[1:-1] & ~((digit[:-2] & digit[2:]) | (closes[:-2] & opens[2:]))).any()):
        return None
    first = digit.copy()  # the first digit of each number
    first[1:] &= ~digit[:-1]
    starts = np.flatnonzero(opens)
    if not 1 <= len(starts) <= limit:
        return None
    if (np.add.reduceat(first.view(np.uint8), starts, dtype=np.int64) != 784).any():
        return None
    last = digit.copy()  # the last digit of each number
    last[:-1] &= ~digit[1:]
    if (digit[3:] & digit[2:-1] & digit[1:-2] & digit[:-3]).any():
        return None  # four digits or more: above 255
    if (first & ~last & (c == _ZERO)).any():
        return None  # a leading zero: not JSON
    value = c.astype(np.int16) - _ZERO
    tens = np.zeros_like(value)
    tens[1:] = np.where(digit[:-1], value[:-1] * 10, 0)
    hundreds = np.zeros_like(value)
    hundreds[2:] = np.where(digit[1:-1] & digit[:-2], value[:-2] * 100, 0)
    numbers = (value + tens + hundreds)[last]
    if numbers.max() > 255:
        return None
    return numbers.reshape(len(starts), 28, 28).astype(np.float32)


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
    # The settings, the caller and the database session are taken here rather than through
    # SettingsDep / OwnerDep / SessionDep: FastAPI runs every sync dependency in its thread
    # pool, a round trip each (four here), which cost more than the whole prediction.
    settings: Settings = request.app.state.settings
    owner = current_owner(request, settings)
    with session_factory(settings.database)() as session:
        experiment = find_experiment(session, experiment_id, owner)
        path = artifacts.model_path(settings, experiment)
        dataset = experiment.spec.get("data", {}).get("dataset", "mnist")
    content_type = request.headers.get("content-type", "")
    limit = settings.max_images_per_request
    if content_type.startswith("multipart/form-data"):
        pixels, names = await uploads_to_pixels(request, limit)
    elif content_type.startswith("application/json"):
        body = await request.body()
        pixels = plain_instances(body, limit)
        if pixels is None:  # anything but plain rows of 784 integers: the general path
            try:
                payload = json.loads(body)
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
    digits = probabilities.argmax(axis=1).tolist()
    images = pixels.astype(np.uint8).tolist() if include_image else [None] * len(pixels)
    # A plain dict: FastAPI validates and serialises it against PredictOut in pydantic-core,
    # without a Python object per prediction.
    return {"experiment_id": experiment.id, "predictions": [
        {"input": name, "digit": digit, "label": classes[digit],
         "probabilities": [round(v, 6) for v in row], "image": image}
        for name, digit, row, image in zip(names, digits, probabilities.astype(np.float64).tolist(),
                                           images, strict=True)]}
