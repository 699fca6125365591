"""Dependencies shared by the routes, as Annotated aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from common.db import session_factory
from common.settings import Settings


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    # async only so FastAPI skips a thread-pool hop: opening a Session does no I/O.
    with session_factory(settings.database)() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters a route declares, its dependencies' included (kept on the route)."""
    known: frozenset[str] | None = getattr(route, "_query_names", None)
    if known is not None:
        return known
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(p.alias for p in dependant.query_params)
        pending.extend(dependant.dependencies)
    route._query_names = frozenset(names)  # type: ignore[attr-defined]
    return route._query_names  # type: ignore[attr-defined]


async def strict_query(request: Request) -> None:
    """Query parameters are checked like body fields: an unknown name (a typo such as
    ?stauts=) is an error rather than silently ignored, and each takes one value."""
    route = request.scope.get("route")
    allowed = _query_names(route) if isinstance(route, APIRoute) else None
    seen: set[str] = set()
    for key, _value in request.query_params.multi_items():
        if allowed is not None and key not in allowed:
            raise RequestValidationError([{"loc": ("query", key), "type": "unknown",
                                           "msg": "unknown query parameter"}])
        if key in seen:
            raise RequestValidationError([{"loc": ("query", key), "type": "repeated",
                                           "msg": "given more than once; it takes one value"}])
        seen.add(key)
