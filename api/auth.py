"""Optional API keys: off when none are configured; on, every route but /health needs one.

A job belongs to the key that created it (stored as a hash of the key, never the key);
another key gets 404 for it and never sees it in lists.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer

from api.deps import SettingsDep
from common.settings import Settings

# Declares the scheme in OpenAPI; added to the routes only when keys are configured.
bearer_scheme = HTTPBearer(auto_error=False, description="An API key from MNISTLAB_API_KEYS")


def owner_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


async def current_owner(request: Request, settings: SettingsDep) -> str | None:
    """The caller's owner id, or None when keys are off."""
    return owner_from_headers(request, settings)


def owner_from_headers(request: Request, settings: Settings) -> str | None:
    keys = settings.keys
    if not keys:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    given = token.strip().encode() if scheme.lower() == "bearer" else b""
    match = None
    for key in keys:  # compare with every key, in constant time, whatever matches
        if hmac.compare_digest(key.encode(), given):
            match = key
    if match is None:
        raise HTTPException(401, "a valid API key is needed: 'Authorization: Bearer KEY'",
                            headers={"WWW-Authenticate": "Bearer"})
    return owner_of(match)


OwnerDep = Annotated[str | None, Depends(current_owner)]
