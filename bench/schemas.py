"""The accept payload: same shape and validation as jef-one's create-session request."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

Field64 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class CreateSession(BaseModel):
    """POST /one-post-create-session-job body."""

    model_config = ConfigDict(extra="forbid")

    entity_number: Field64
    employee_number: Field64
    session_id: Field64
    app_type: Field64
    app_number: Field64


def accepted(job_id: str, session_id: str) -> dict[str, object]:
    """jef-one's accepted-response body."""
    return {
        "is_accepted": True,
        "message": "accepted",
        "operation": "create_session",
        "job_id": job_id,
        "job_status": "queued",
        "target_table": "sessions",
        "target_pk": session_id,
        "confirmation": "GET /one-get-session-job-status",
        "allowed_method": "POST",
    }
