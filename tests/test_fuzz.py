"""Schemathesis over the app's own /openapi.json: every operation, bounded, no 5xx, answers as documented.

The server's limits are small here (128 px, 3 steps, 2 images), and the document states them, so the
generated requests that are accepted run on the tiny model in a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from conftest import make_settings, start_app  # noqa: E402

EXAMPLES_PER_OPERATION = 15


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    app = start_app(make_settings(folder, max_width=128, max_height=128, max_steps=3, max_images=2, default_steps=2,
                                  request_timeout=10, queue_wait_timeout=30, job_timeout=60, max_queue_size=20))
    yield app
    app.extensions["sdedge"].shutdown()


def fuzz(operation: Any) -> None:
    """Hypothesis over one operation's generated cases, checked for 5xx and schema conformance."""
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

    run()


def test_no_server_error_and_every_answer_matches_the_document(fuzzed_app: Any) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzzed_app)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            fuzz(operation)
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert operations >= 38, operations
    assert not failures, "\n\n".join(failures)
