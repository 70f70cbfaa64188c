"""Ikonomikal's endpoints build their JSON themselves (to take JsonBodyRoute's fast path):
the bytes must be those FastAPI made of the same response model."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from writegate.modules.ikonomikal.routes import answer_async
from writegate.modules.ikonomikal.schemas import (
    DeleteResponse,
    ReadResponse,
    SaveResponse,
    TokenResponse,
)

STAMP = {"mUser": "Ağ Kullan\u0131c\u0131", "mGroup": "GRÜP", "mDate": 20261205, "mTime": 134501}
MESSAGE = {"rspID": 1000086, "rspMsg": "Kod boş olamaz: “ş”", "rspChr": [{"pid": "1"}]}
RECORD = {
    "modInf": STAMP,
    "f001": "D-ÇIĞ",
    "f002": 'Sat\u0131\u015f "merkez" \\ 東京',
    "f003": "",
    "f004": -7,
    "l001": "a\nb",
    "l002": "",
    "l003": "€",
    "l004": "",
    "rowId": 9_007_199_254_740_993,
}
ANSWERS: list[BaseModel] = [
    TokenResponse.model_validate({**MESSAGE, "rspPrc": MESSAGE}),
    TokenResponse(),
    SaveResponse.model_validate({"parCode": ["DÇ01"], "modInf": STAMP}),
    SaveResponse.model_validate({"rspPrc": MESSAGE}),
    ReadResponse.model_validate({"rowData": [RECORD, RECORD], "rowTotal": 2}),
    DeleteResponse.model_validate({"parCode": ["a", "ß"], "modInf": STAMP, "rspPrc": MESSAGE}),
]


def fastapi_bytes(answer: BaseModel) -> bytes:
    """What a plain FastAPI route with this response model answers for it."""
    app = FastAPI()

    @app.post("/x", response_model=type(answer))
    async def route() -> Any:
        return answer

    async def post() -> bytes:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return (await client.post("/x")).content

    return asyncio.run(post())


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: type(a).__name__)
def test_answer_is_fastapis_json_of_the_response_model_byte_for_byte(answer: BaseModel) -> None:
    async def call() -> BaseModel:
        return answer

    ours = asyncio.run(answer_async(type(answer), call()))
    assert ours.status_code == 200
    assert ours.headers["content-type"] == "application/json"
    assert bytes(ours.body) == fastapi_bytes(answer)
