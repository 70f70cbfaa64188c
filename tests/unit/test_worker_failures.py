"""A worker loop's repeated failure is logged once with its traceback, then once a minute."""

from __future__ import annotations

import logging

import pytest

from writegate.core.worker.failures import Failures

LOG = logging.getLogger("writegate.test.failures")


def _fail(failures: Failures, exc: Exception) -> None:
    try:
        raise exc
    except Exception as caught:
        failures.failed(caught)


def test_regression_an_outage_logged_a_traceback_every_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A database outage failed the dispatcher's every claim, each logged with a 100-line
    traceback (one a second). The first failure has its traceback; its repeats are one line
    a minute with their count; another failure is logged in full; the recovery once."""
    now = [1000.0]
    failures = Failures(LOG, "dispatch", every=60.0, clock=lambda: now[0])
    down = ConnectionError("the database is down")
    with caplog.at_level(logging.INFO, logger=LOG.name):
        for _ in range(50):
            _fail(failures, down)
        first = [r for r in caplog.records if r.exc_info]
        assert len(caplog.records) == 1
        assert len(first) == 1
        now[0] += 61  # a minute on
        _fail(failures, down)
        assert caplog.records[-1].getMessage() == (
            "dispatch still failing (51 times so far): ConnectionError: the database is down"
        )
        assert caplog.records[-1].exc_info is None
        _fail(failures, ValueError("something else"))
        assert caplog.records[-1].exc_info is not None
        failures.succeeded()
        failures.succeeded()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[-1] == "dispatch recovered after 52 failures"
    assert len(messages) == 4
