"""Schemathesis against the OpenAPI schema: no input, from anyone, is a server error.

The real app over a real chain and database, fuzzed operation by operation (positive and
negative cases) as each kind of caller: anonymous, the foundation, the licensed manufacturer
(holder of device licence 1, so batch uploads reach the minting pipeline) and a committee
member. The chain already holds a manufacturer licence, a device licence and a case at every
id 1, so generated ids sometimes reach real records. Here the server is fully configured and
its chain is up, so even the deliberate 503s (`not_configured`, `chain_unavailable`) would be
defects: every 5xx fails. Responses must also match the schema (errors: `ErrorOut`).

Operations are driven with `operation.as_strategy` under Hypothesis, one subtest each, rather
than `schemathesis.pytest.from_fixture(...).parametrize()`, whose node-id rewriting fails on
pytest 9 (`'Function' object has no attribute '_nodeid'`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import response_schema_conformance

from devicemint.api.deps import SESSION_COOKIE
from devicemint.chain.node import LocalNode
from tests.integration.api.pipeline import Pipeline, started

pytestmark = pytest.mark.xdist_group("chain")

MAX_EXAMPLES = 25
CALLERS = ("anonymous", "foundation", "manufacturer", "member1")
CHECKS = [not_a_server_error, response_schema_conformance]
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run: CI fails only when the code changes
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@dataclass
class Fuzz:
    pipeline: Pipeline
    caller: str
    schema: schemathesis.BaseSchema

    def credentials(self, case: schemathesis.Case) -> dict[str, str]:
        """The caller's bearer token, in place of any credential the fuzzer made up."""
        if self.caller == "anonymous":
            return {}
        for name in list(case.headers or {}):
            if name.lower() in ("authorization", "x-api-key"):
                del case.headers[name]
        (case.cookies or {}).pop(SESSION_COOKIE, None)
        party = self.pipeline.parties[self.caller]
        if case.operation.path == "/auth/sign-out":
            # A session of its own, so that signing out does not end the one the others use.
            return self.pipeline.sign_in(f"{self.caller} (to sign out)", party.account).headers
        return party.headers


@pytest.fixture(params=CALLERS)
def fuzz(
    request: pytest.FixtureRequest, anvil_node: LocalNode, tmp_path: Path, chain_snapshot: None
) -> Iterator[Fuzz]:
    with started(anvil_node, tmp_path) as pipeline:
        pipeline.license_manufacturer()
        pipeline.licensed(pipeline.to_vote())
        schema = schemathesis.openapi.from_asgi("/openapi.json", pipeline.client.app)
        yield Fuzz(pipeline, request.param, schema)


def test_no_input_is_a_server_error(fuzz: Fuzz, subtests: pytest.Subtests) -> None:
    operations = []
    for result in fuzz.schema.get_all_operations():
        if isinstance(result, Err):
            pytest.fail(f"schemathesis cannot read the OpenAPI schema: {result.err()}")
        operations.append(result.ok())
    assert len(operations) > 30, "the schema lost its routes"
    for operation in operations:
        cases = st.one_of(operation.as_strategy(mode) for mode in GenerationMode)

        @FUZZ_SETTINGS
        @given(case=cases)
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=fuzz.credentials(case), checks=CHECKS)

        with subtests.test(operation.label):
            run()
