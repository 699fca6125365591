"""Dependencies shared by the routes, as Annotated aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
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


async def no_repeated_query(request: Request) -> None:
    """Every query parameter of this API takes one value: a repeat is a mistake, not a list."""
    seen: set[str] = set()
    for key, _value in request.query_params.multi_items():
        if key in seen:
            raise RequestValidationError([{"loc": ("query", key), "type": "repeated",
                                           "msg": "given more than once; it takes one value"}])
        seen.add(key)
