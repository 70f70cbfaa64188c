"""The install a user gets: `pip install .` into a new virtualenv (no extras, none of the dev
tools), then `writegate serve` takes each kind of write.

Pins a bug: greenlet, which the group commit runs every batch in, was a dependency of the
dev tools only. A plain install answered every jef-one and Ikonomikal write with an internal
error, and ABS putDb with `ok` for a package it never wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import free_port, fresh_database, wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with writegate installed from this tree, as `pip install .` does."""
    where = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=120)
    subprocess.run(
        [str(where / "bin" / "pip"), "install", "-q", str(ROOT)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    return where


def _env(url: str) -> dict[str, str]:
    """The environment of a user's shell: no WRITEGATE_* but the database, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WRITEGATE_", "PYTHON"))}
    return {**env, "WRITEGATE_DATABASE_URL": url}


def _writegate(venv: Path, env: dict[str, str], cwd: Path, *args: str) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "writegate"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def served(venv: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`writegate serve` of the fresh install on a new database: its URL and an ABS key."""
    with fresh_database(str(tmp_path)) as url:
        env = _env(url)
        _writegate(venv, env, tmp_path, "migrate")
        made = _writegate(
            venv, env, tmp_path, "principals", "create", "--name", "root", "--tenant",
            "EN0000FRM", "--roles", "abs:write", "--json",
        )  # fmt: skip
        _writegate(venv, env, tmp_path, "abs", "add-client", "EN0000FRM", "--name", "C")
        port = free_port()
        log = (tmp_path / "serve.log").open("wb")
        serve = subprocess.Popen(
            [str(venv / "bin" / "writegate"), "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:

            def ready() -> bool:
                assert serve.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(ready, 60, 0.2)
            yield base, json.loads(made)["api_key"]
        finally:
            serve.terminate()
            serve.wait(60)
            log.close()


def test_a_plain_install_serves_every_kind_of_write(served: tuple[str, str]) -> None:
    """A jef-one accept run by the embedded worker, an ABS putDb read back."""
    base, key = served
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/one-entities-post-one", json={"entity_number": "1001", "entity_name": "H"})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]

        def done() -> dict[str, object] | None:
            view = c.get("/jef-one-get-job-by-job-id", params={"job_id": job_id}).json()
            return view if view["job_status"] == "succeeded" else None

        wait_for(done, 60, 0.1)
        headers = {"x-api-key": key}
        put = c.post("/model/package/putDb", json={"client_code": "EN0000FRM"}, headers=headers)
        assert put.json()["status"] == "ok", put.text
        package = put.json()["data"]
        got = c.post(
            "/model/package/get",
            json={"client_code": "EN0000FRM", "id": package["id"]},
            headers=headers,
        )
        assert (got.json()["status"], got.json()["data"]["uid"]) == ("ok", package["uid"])
