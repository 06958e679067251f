"""The contract check: every API response the test suite produces is validated against the
OpenAPI document the server serves (`/v1/openapi.json`), status, headers and body, problem
responses included. A response the document does not describe fails the test that got it, so
the code and the document cannot drift apart.

With `--contract-coverage` (as `make test` runs), the session also fails when an operation of
the document was never exercised by any test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.client import Client
from django.urls import resolve
from openapi_core import Config, OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

SPEC_PATH = "/v1/openapi.json"
NOT_CONTRACT = ("/v1/docs", SPEC_PATH)


class Contract:
    def __init__(self) -> None:
        self._openapi: OpenAPI | None = None
        self.document: dict[str, Any] = {}
        self.exercised: set[tuple[str, str]] = set()
        self.checked = 0

    def openapi(self) -> OpenAPI:
        if self._openapi is None:
            # The served document, from the view that serves it (no request evidence written).
            request = RequestFactory().get(SPEC_PATH)
            response = resolve(SPEC_PATH).func(request)
            response.render()
            self.document = json.loads(response.content)
            # Problem details are JSON too (RFC 9457's own media type); a period's closing balances
            # are CSV, text.
            config = Config(extra_media_type_deserializers={"application/problem+json": json.loads,
                                                            "text/csv": lambda body, **_: body.decode()})
            self._openapi = OpenAPI.from_dict(self.document, config=config)
        return self._openapi

    def check(self, response: HttpResponse) -> None:
        request = getattr(response, "wsgi_request", None)
        if request is None or not request.path.startswith("/v1/") or request.path.startswith(NOT_CONTRACT):
            return
        openapi_request = DjangoOpenAPIRequest(request)
        try:
            self.openapi().validate_response(openapi_request, DjangoOpenAPIResponse(response))
        except (PathNotFound, OperationNotFound):
            # An unknown endpoint or method (the catch-all 404 problem, a 405): not in the contract.
            return
        except Exception as exc:  # every other failure is a drift between the code and the document
            body = response.content[:800].decode("utf-8", "replace")
            causes = []
            cause: BaseException | None = exc
            while cause is not None:
                causes.append(f"{type(cause).__name__}: {cause}")
                cause = cause.__cause__ or (cause.schema_errors[0] if getattr(cause, "schema_errors", None) else None)
            raise AssertionError(
                f"response breaks the OpenAPI contract: {request.method} {request.path} -> "
                f"{response.status_code}\n  " + "\n  ".join(causes) + f"\n  body: {body}") from exc
        self.checked += 1
        self.exercised.add((request.method.lower(), openapi_request.path_pattern or request.path))

    def operations(self) -> set[tuple[str, str]]:
        self.openapi()
        return {(method, path) for path, item in self.document["paths"].items() for method in item
                if method in ("get", "post", "put", "patch", "delete")}


CONTRACT = Contract()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--contract-coverage", action="store_true",
                     help="fail the session when an operation of /v1/openapi.json was never exercised")


def pytest_configure(config: pytest.Config) -> None:
    original: Callable[..., Any] = Client.request

    def request(self: Client, **environ: Any) -> Any:
        response = original(self, **environ)
        CONTRACT.check(response)
        return response

    Client.request = request  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not session.config.getoption("--contract-coverage") or exitstatus != 0:
        return
    missing = sorted(CONTRACT.operations() - CONTRACT.exercised)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write("\n")
    if missing:
        lines = "\n".join(f"  {method.upper()} {path}" for method, path in missing)
        if reporter:
            reporter.write_line(f"contract coverage: {len(missing)} operation(s) never exercised:\n{lines}", red=True)
        session.exitstatus = 1
    elif reporter:
        reporter.write_line(f"contract: {CONTRACT.checked} responses validated, every one of "
                            f"{len(CONTRACT.exercised)} operations exercised")
