"""/datasets: what can be trained on, sample grids and input-value histograms."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel

from api.schemas import ErrorOut
from trainer.data import CLASS_NAMES, DESCRIPTIONS, DatasetUnavailable
from trainer.spec import DatasetName, Scaling

router = APIRouter(prefix="/datasets", tags=["datasets"])

PNG = {200: {"content": {"image/png": {}}, "description": "A PNG image"},
       404: {"model": ErrorOut}, 503: {"model": ErrorOut, "description": "Data set unavailable"}}
HISTOGRAM_IMAGES = 2000


class DatasetOut(BaseModel):
    name: str
    description: str
    classes: list[str]
    image_shape: list[int]
    links: dict[str, str]


def _known(name: str) -> DatasetName:
    if name not in CLASS_NAMES:
        raise HTTPException(404, f"no data set named {name!r}; known: {', '.join(CLASS_NAMES)}")
    return name  # type: ignore[return-value]


# PNGs are drawn once per process and kept; the arrays behind them are not (API memory).
@functools.lru_cache(maxsize=32)
def _samples_png(name: DatasetName) -> bytes:
    from trainer.data import read_dataset
    from trainer.plots import image_grid_png

    data = read_dataset(name)
    picks = [int(i) for c in range(10) for i in (data.y_train == c).nonzero()[0][:10]]
    picks.sort(key=lambda i: (i % 10, data.y_train[i]))
    return image_grid_png(data.x_train[picks], [CLASS_NAMES[name][int(data.y_train[i])]
                                                for i in picks], title=f"{name}: 10 of each class")


@functools.lru_cache(maxsize=32)
def _histogram_png(name: DatasetName, scaling: Scaling, invert: bool) -> bytes:
    from trainer.data import read_dataset
    from trainer.plots import value_histogram_png
    from trainer.preprocessing import affine_for, pixel_stats
    from trainer.spec import DataSpec

    data = read_dataset(name)
    spec = DataSpec(dataset=name, scaling=scaling, invert=invert)
    affine = affine_for(spec, pixel_stats(data.x_train))
    values = affine.apply(data.x_train[:HISTOGRAM_IMAGES])
    return value_histogram_png(values, f"{name}: pixel values, scaling={scaling}, invert={invert}")


def _render(draw, *args) -> Response:
    try:
        return Response(content=draw(*args), media_type="image/png")
    except DatasetUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc


@router.get("", response_model=list[DatasetOut])
def list_datasets() -> list[DatasetOut]:
    return [DatasetOut(name=name, description=DESCRIPTIONS[name], classes=classes,
                       image_shape=[28, 28],
                       links={"samples": f"/datasets/{name}/samples.png",
                              "histogram": f"/datasets/{name}/histogram.png"})
            for name, classes in CLASS_NAMES.items()]


@router.get("/{name}/samples.png", response_class=Response, responses=PNG,
            summary="A grid of sample images, ten of each class")
def samples(name: str) -> Response:
    return _render(_samples_png, _known(name))


@router.get("/{name}/histogram.png", response_class=Response, responses=PNG,
            summary="Histogram of the pixel values after a scaling (the chapter's input plots)")
def histogram(name: str, scaling: Annotated[Scaling, Query()] = "none",
              invert: Annotated[bool, Query()] = False) -> Response:
    return _render(_histogram_png, _known(name), scaling, invert)
