"""Schemathesis against the app's own OpenAPI schema: no 5xx, responses match the schema.

Runs every check on every operation, with keys off and with keys on (and the key sent).
The example count per operation is kept small so the whole run fits CI's budget.
"""

from __future__ import annotations

import tempfile

import schemathesis
import service_helpers as svc
from hypothesis import HealthCheck, settings

from api.main import create_app
from common.settings import Settings

EXAMPLES = 25
KEY = "schemathesis-key"


def _app(**extra: str):
    home = tempfile.mkdtemp(prefix="mnistlab-schemathesis-")
    return create_app(Settings(home=home, instance=svc.new_instance(),
                               redis_url=svc.redis_url(), **extra))


open_api = schemathesis.openapi.from_asgi("/openapi.json", _app())
keyed_api = schemathesis.openapi.from_asgi("/openapi.json", _app(api_keys=KEY))
# derandomize: the same examples every run, so CI is repeatable (still every check, each op).
FAST = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@open_api.parametrize()
@FAST
def test_without_keys(case) -> None:
    case.call_and_validate()


@keyed_api.parametrize()
@FAST
def test_with_a_key(case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"})
