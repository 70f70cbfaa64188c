"""What is wrong with which input field, independent of any web framework or command line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one input field."""

    #: dotted path of the field ("" for the body as a whole)
    field: str
    #: machine code, e.g. "missing", "extra_forbidden", "string_type", "string_pattern_mismatch"
    code: str
    message: str


class BadInput(Exception):
    """One or more fields of a request or command are invalid."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems
