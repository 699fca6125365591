"""Error responses: every 422 names each field and the rule it broke."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

# Tags of the POST /experiments body union: not field names, so not shown in error locations.
_UNION_TAGS = {"experiment-spec", "recipe-request"}


def clean_errors(errors: Iterable[dict[str, Any]], prefix: Sequence[str | int] = ()) -> list[dict]:
    cleaned = []
    for error in errors:
        loc = [*prefix, *error.get("loc", ())]
        if len(loc) > 1 and loc[0] == "body" and loc[1] in _UNION_TAGS:
            loc = [loc[0], *loc[2:]]
        cleaned.append({"loc": loc, "msg": str(error.get("msg", "")),
                        "type": str(error.get("type", ""))})
    return cleaned


def one_line(errors: list[dict]) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:] or e['loc'])}: {e['msg']}" for e in errors)


async def _validation_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = clean_errors(exc.errors())
    return JSONResponse(status_code=422, content={"detail": errors, "message": one_line(errors)})


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
