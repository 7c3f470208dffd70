"""Contract testing: schemathesis generates requests from the OpenAPI document the service
serves (`GET /openapi.json`) and sends them to the real `linkguard serve` on loopback.

Every answer must be below 500, have a documented status and content type, and match its
response schema; schema-valid requests must be accepted and schema-violating ones refused
(so the limits and types the document states are the ones the service enforces).
Deterministic (derandomized hypothesis, 50 examples an operation) and about twenty seconds long.

Not here:
- `ignored_auth` and `missing_required_header` (admin requests without the token): admin auth
  has its own tests (test_web_admin.py, test_admin_listener.py), and from one address they would
  soon turn every admin request into a 429 from the wrong-token back-off.
- The HTML console under /admin/ui (the link shim and console section of README.md): only "no 5xx" is checked there; its
  redirects to the login form and its answers to undeclared methods are not in the JSON
  contract.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import ignored_auth, missing_required_header

from tests.liveserver import DEADLINE, LiveService, live_service
from tests.webfixtures import AUTH

DOCUMENT = resources.files("linkguard.web").joinpath("openapi.json")
EXAMPLES = 50  # per operation

# Where the service's answer depends on more than the document can say:
# - a body over max_body_bytes (1 MB) is refused with 413, however well-formed;
# - a reload names lists of the manifest: an unknown name is refused (422) though schema-valid;
CONFIG = schemathesis.Config.from_dict({
    "checks": {
        "negative_data_rejection": {"expected-statuses": [
            "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]},
    },
    "operations": [{"include-path": "/admin/reload", "checks": {
        "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "422", "429"]}}}],
})
# Loaded from the package file at collection time (schemathesis' fixture loader does not work
# with this pytest); test_served_document_is_the_one_tested proves it is what the service serves.
schema = schemathesis.openapi.from_dict(json.loads(DOCUMENT.read_text()), config=CONFIG)


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with live_service(tmp_path_factory.mktemp("schemathesis")) as service:
        yield service


def test_served_document_is_the_one_tested(svc: LiveService) -> None:
    with urllib.request.urlopen(f"{svc.url}/openapi.json", timeout=DEADLINE) as resp:
        assert resp.read() == DOCUMENT.read_bytes()


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_contract(case: Any, svc: LiveService) -> None:
    if case.path.startswith("/admin/ui/"):
        case.call_and_validate(base_url=svc.url, headers=AUTH, checks=[not_a_server_error])
    else:
        # Always the right token (generated cases may drop or garble it; see above).
        case.headers = {k: v for k, v in (case.headers or {}).items()
                        if k.lower() != "authorization"} | AUTH
        case.call_and_validate(base_url=svc.url, headers=AUTH,
                               excluded_checks=[ignored_auth, missing_required_header])

