"""A group-commit caller is answered with a success only by a run of its write."""

from __future__ import annotations

import pytest

from writegate.core.db.batch_run import Single, WriteNotRun, not_run
from writegate.core.db.group_commit import _Call


def test_regression_a_write_that_never_ran_was_answered_as_a_success() -> None:
    """A batch whose runner failed before its writes (greenlet missing) answered each caller
    with None: ABS answered `ok` for a package it never wrote."""
    call = _Call(Single(lambda session: "written"), None, None)
    call.answer()
    with pytest.raises(WriteNotRun):
        call.future.result(0)


def test_a_batch_that_could_not_run_gives_its_callers_the_error() -> None:
    """The error goes to the calls that did not run, not over an outcome already set."""
    waiting = _Call(Single(lambda session: 1), None, None)
    answered = _Call(Single(lambda session: 2), None, None)
    answered.outcome = 2
    not_run([waiting, answered], ImportError("no greenlet"))
    waiting.answer()
    answered.answer()
    with pytest.raises(ImportError, match="no greenlet"):
        waiting.future.result(0)
    assert answered.future.result(0) == 2
