"""The one table of foreign exceptions: our words for the client, the runtime's text only in the log."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import OperationalError

from sdedge.errors import DatabaseUnavailable, GenerationError, map_exceptions
from sdedge.foreign_errors import DATABASE_ERRORS, RUNTIME_ERRORS, is_database_outage

GENAI_ASSERTION = ("Exception from src/cpp/src/image_generation/schedulers/euler_ancestral_discrete.cpp:312:\n"
                   "Check '!m_timesteps.empty()' failed at /__w/openvino.genai/src/cpp/src/image_generation/"
                   "schedulers/euler_ancestral_discrete.cpp:312")


def test_a_runtime_assertion_is_logged_and_answered_in_our_words(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(GenerationError) as raised, map_exceptions(RUNTIME_ERRORS):
        raise RuntimeError(GENAI_ASSERTION)
    assert "Check" not in raised.value.message and ".cpp" not in raised.value.message and "/__w" not in raised.value.message
    assert "m_timesteps" in caplog.text  # the detail is kept for whoever reads the log


def test_database_errors_are_outages_with_a_503() -> None:
    outage = OperationalError("SELECT 1", {}, Exception("connection refused"))
    assert is_database_outage(outage)
    with pytest.raises(DatabaseUnavailable) as raised, map_exceptions(DATABASE_ERRORS):
        raise outage
    assert raised.value.status_code == 503 and raised.value.code == "database_unavailable"
    assert not is_database_outage(ValueError("a bug, not an outage"))
