"""Schemathesis against the live API's own OpenAPI document, with a valid token: every operation, drawn inputs
valid and invalid, answers without a 5xx and as its schema says (status, content type, headers, body)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err, Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.exchange.api.conftest import Hub


@pytest.mark.parametrize("engine", ["pg_engine"], indirect=True)
def test_every_operation_answers_within_its_schema(hub: Hub) -> None:
    schema = schemathesis.openapi.from_url(f"{hub.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {hub.tokens['city']}"}
    results = list(schema.get_all_operations())
    assert not [result.err() for result in results if isinstance(result, Err)]  # every operation loads
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) > 10  # the catalogue, rows, changes, snapshots, subscriptions and the sharing protocol
    failures: dict[str, str] = {}

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answers_within_schema(case: schemathesis.Case[Any]) -> None:
            # An opaque cursor or page token, which the schema can only call a string, is rightly refused: every
            # check runs but the one that wants each schema-valid request accepted.
            case.call_and_validate(base_url=hub.base_url, headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            answers_within_schema()
        except (AssertionError, BaseExceptionGroup) as failure:  # every operation is tried; all failures reported
            failures[operation.label] = str(failure)[:2000]
    assert failures == {}
