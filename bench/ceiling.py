"""The ceiling: a bare FastAPI endpoint with the same validation and no database."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from bench.schemas import CreateSession, accepted

app = FastAPI(title="bench ceiling")


@app.post("/bench/one-post-create-session-job", status_code=202)
async def create_session(body: CreateSession) -> JSONResponse:
    """Validate and answer 202, writing nothing."""
    return JSONResponse(accepted(str(uuid.uuid4()), body.session_id), status_code=202)
