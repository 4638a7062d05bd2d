"""Schemathesis drives every documented operation with generated input: no input, however
odd, may cause a server error, and every error must be problem+json."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import auth


def test_no_input_causes_a_server_error(app, api_key, backend) -> None:
    if backend != "sqlite":
        pytest.skip("input handling does not depend on the database; fuzzed once, on SQLite")
    # given the live OpenAPI document and a key that may call everything
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    key = api_key("admin")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def fuzz(case) -> None:  # type: ignore[no-untyped-def]
            # when generated input is sent
            response = case.call(headers=auth(key))
            # then the server never fails, and errors are problem+json
            case.validate_response(response, checks=[not_a_server_error])
            if response.status_code >= 400:
                assert response.headers["content-type"] == ["application/problem+json"]

        fuzz()
