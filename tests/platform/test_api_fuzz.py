"""Schemathesis drives every documented operation with generated input, valid and invalid, on
both databases: no input, however odd, may cause a server error, and every answer must be what
the OpenAPI document says (status code, content type, headers, body schema; valid input is
accepted, invalid input refused)."""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from tests.conftest import auth

# Every built-in check runs but ``positive_data_acceptance``: it wants every schema-valid
# request accepted, and some rules span fields in ways JSON Schema cannot say (an event names
# a person by one of two ids, an order's totals add up); those answer 422 naming the field.
# Batches answer 200 with each invalid item rejected on its own (``results``/``errors``), as
# Segment's clients expect: an invalid item does not make the request invalid.
PER_ITEM_REJECTION = {"POST /v1/events/batch", "POST /v1/batch"}
# Schemathesis' statuses for refused invalid input, and 413: invalid input may also be
# refused for its size.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409", "413", "415", "422"),
                    *("428", "429", "5xx"),
                ]
            }
        }
    }
)
# Examples per operation and generation mode; RAPPORT_FUZZ_EXAMPLES raises it for a deep run.
EXAMPLES = int(os.environ.get("RAPPORT_FUZZ_EXAMPLES", "5"))


def test_every_operation_answers_as_documented(app, api_key, backend) -> None:
    # given the live OpenAPI document and a key that may call everything
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    key = api_key("admin")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    failures: list[str] = []
    for operation in operations:
        # Invalid input needs something to make invalid: a parameter or a body.
        takes_input = bool(operation.path_parameters or operation.query or operation.headers)
        takes_input = takes_input or bool(operation.body)
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if takes_input else [])
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.generate],  # report the failure as found: shrinking costs minutes
            )
            def fuzz(case) -> None:  # type: ignore[no-untyped-def]
                # when generated input is sent
                response = case.call(headers=auth(key))
                # then every check passes: no server error, and the answer is documented
                excluded = [positive_data_acceptance]
                if case.operation.label in PER_ITEM_REJECTION:
                    excluded.append(negative_data_rejection)
                case.validate_response(response, headers=auth(key), excluded_checks=excluded)
                if response.status_code >= 400:
                    assert response.headers["content-type"] == ["application/problem+json"]

            try:
                fuzz()
            except BaseException as failure:  # every operation's failures, not only the first
                if isinstance(failure, KeyboardInterrupt):
                    raise
                failures.append(f"{operation.label} ({mode.value}): {failure}")

    # then no operation failed a check
    assert not failures, "\n\n".join(failures)
