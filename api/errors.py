"""Error responses: every 422 names each field and the rule it broke."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

# Tags of the POST /experiments body union: not field names, so not shown in error locations.
BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's words for undecodable bodies
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


async def _http_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's handler, but a 405 lists every method the path allows (not just one route's)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == BODY_PARSE_ERROR:
        # A body that is not even text: a validation error like any other malformed JSON.
        errors = [{"loc": ["body"], "msg": "body is not valid JSON (or not UTF-8)",
                   "type": "json_invalid"}]
        return JSONResponse(status_code=422, content={"detail": errors,
                                                      "message": one_line(errors)})
    if exc.status_code == 405:
        allowed = sorted({method for route in request.app.routes
                          if isinstance(route, Route) and route.methods
                          and route.matches({**request.scope, "method": "GET"})[0] != Match.NONE
                          for method in route.methods})
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
    return await http_exception_handler(request, exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
