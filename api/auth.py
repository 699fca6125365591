"""Optional API keys: off when none are configured; on, every route but /health needs one.

A job belongs to the key that created it (stored as a hash of the key, never the key);
another key gets 404 for it and never sees it in lists.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import SettingsDep

_bearer = HTTPBearer(auto_error=False, description="Needed only when MNISTLAB_API_KEYS is set")


def owner_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def require_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The caller's owner id, or None when keys are off."""
    keys = settings.keys
    if not keys:
        return None
    given = (credentials.credentials if credentials and credentials.scheme.lower() == "bearer"
             else "").encode()
    match = None
    for key in keys:  # compare with every key, in constant time, whatever matches
        if hmac.compare_digest(key.encode(), given):
            match = key
    if match is None:
        raise HTTPException(401, "a valid API key is needed: 'Authorization: Bearer KEY'",
                            headers={"WWW-Authenticate": "Bearer"})
    return owner_of(match)


OwnerDep = Annotated[str | None, Depends(require_key)]
