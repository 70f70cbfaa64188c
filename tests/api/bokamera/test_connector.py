"""The httpx Vaka connector against a mocked transport, and the password box."""

from __future__ import annotations

import base64
import gc
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from writegate.modules.bokamera import connector as vaka_connector
from writegate.modules.bokamera import crypto, reach
from writegate.modules.bokamera.connector import (
    HttpVakaConnector,
    VakaAuthError,
    VakaConnection,
    VakaDataError,
    VakaNotAllowed,
    VakaUnavailable,
    tls_context,
)
from writegate.modules.bokamera.reach import NETWORKS_ENV
from writegate.modules.bokamera.settings import BokaMeraSettings
from writegate.modules.bokamera.simulator import RunningSimulator

CONN = VakaConnection("http://vaka.invalid", 8443, "api", "pw")


def connector(handler: Any) -> HttpVakaConnector:
    """A connector whose HTTP goes to `handler`, with instant retries."""
    return HttpVakaConnector(CONN, retries=2, backoff=0, transport=httpx.MockTransport(handler))


def test_page_request_shape_and_parsing() -> None:
    """GET /api/v1/users?page&pageSize with Basic auth; users and hasMore parsed."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"users": [{"id": "u1", "firstName": "Ada", "email": "a@x"}], "hasMore": True}
        return httpx.Response(200, json={**body, "totalCount": 9})

    page = connector(handler).list_users(3, 50)
    assert [u.id for u in page.users] == ["u1"]
    assert (page.page, page.has_more, page.total) == (3, True, 9)
    req = seen[0]
    assert str(req.url) == "http://vaka.invalid:8443/api/v1/users?page=3&pageSize=50"
    assert req.headers["authorization"] == "Basic " + base64.b64encode(b"api:pw").decode()


def test_regression_each_sync_built_its_own_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connectors share one verifying TLS context: building one reads the CA bundle."""
    here = threading.get_ident()  # other tests' leftover threads may make clients meanwhile
    built: list[ssl.SSLContext] = []
    given: list[object] = []
    real_context, real_client = ssl.create_default_context, httpx.Client

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made = real_context(*args, **kwargs)
        if threading.get_ident() == here:
            built.append(made)
        return made

    class Seen(real_client):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if threading.get_ident() == here:
                given.append(kwargs.get("verify", True))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counted)
    monkeypatch.setattr(httpx, "Client", Seen)
    tls_context.cache_clear()
    try:
        for _ in range(3):
            HttpVakaConnector(CONN).close()
        assert len(given) == 3
        assert all(ctx is given[0] for ctx in given), "each connector got its own TLS context"
        assert given[0] is tls_context()
        assert len(built) <= 1
        assert isinstance(given[0], ssl.SSLContext)
        assert (given[0].verify_mode, given[0].check_hostname) == (ssl.CERT_REQUIRED, True)
    finally:
        tls_context.cache_clear()


def test_transient_errors_are_retried_then_raised() -> None:
    """503 twice then 200 succeeds; 503 forever raises VakaUnavailable after 3 tries."""
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            return httpx.Response(503)
        return httpx.Response(200, json={"users": [], "hasMore": False})

    assert connector(flaky).list_users(1, 10).users == []
    assert calls["n"] == 3
    calls["n"] = 0
    with pytest.raises(VakaUnavailable, match="HTTP 503"):
        connector(lambda r: httpx.Response(503)).list_users(1, 10)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(VakaUnavailable, match="unreachable"):
        connector(down).list_users(1, 10)


@pytest.mark.parametrize(
    ("response", "error", "match"),
    [
        (httpx.Response(401), VakaAuthError, "rejected the credentials"),
        (httpx.Response(200, content=b"<html>"), VakaDataError, "invalid JSON"),
        (httpx.Response(200, json={"users": {}}), VakaDataError, "'users' list"),
        (httpx.Response(200, json={"users": [{"id": ""}], "hasMore": False}), VakaDataError, "id"),
        (httpx.Response(200, json={"users": []}), VakaDataError, "hasMore"),
        (httpx.Response(404), VakaDataError, "HTTP 404"),
    ],
)
def test_permanent_errors(response: httpx.Response, error: type[Exception], match: str) -> None:
    """Bad credentials and unusable answers are permanent (not retried)."""
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return response

    with pytest.raises(error, match=match):
        connector(handler).list_users(1, 10)
    assert calls["n"] == 1


def test_password_box_round_trip_and_tamper() -> None:
    """Encryption is randomized, reversible, and detects tampering."""
    box = crypto.Keyring([crypto.new_key()], "test")
    a, b = box.encrypt("hunter2"), box.encrypt("hunter2")
    assert a != b
    assert "hunter2" not in a
    assert box.decrypt(a) == "hunter2"
    i = len(a) // 2
    tampered = a[:i] + ("A" if a[i] != "A" else "B") + a[i + 1 :]
    with pytest.raises(crypto.SecretError):
        box.decrypt(tampered)
    with pytest.raises(crypto.SecretError, match="none of the keys"):
        crypto.Keyring([crypto.new_key()], "test").decrypt(a)


def test_regression_a_synced_pages_body_waited_for_the_garbage_collector(
    vaka: Callable[..., RunningSimulator],
) -> None:
    """A fetched page's body is freed with the page: httpx keeps what a response read in
    reference cycles of its own objects, which only a collection frees (with `serve`'s
    young-generation threshold, a 100,000-user sync left 10 MB more behind)."""
    sim = vaka(users=500)
    reader = HttpVakaConnector(VakaConnection(sim.url, None, "vaka", "vaka"))

    def bodies() -> set[int]:
        return {
            id(o)
            for o in gc.get_objects()
            if isinstance(o, httpx.Response) and getattr(o, "_content", None)
        }

    gc.collect()
    gc.disable()
    try:
        before = bodies()  # other tests' responses, still referenced
        page = reader.list_users(1, 500)
        assert len(page.users) == 500
        del page
        kept = bodies() - before
    finally:
        gc.enable()
        reader.close()
    assert not kept


def test_regression_a_page_sent_a_byte_at_a_time_times_out(vaka: Any) -> None:
    """httpx's read timeout is per chunk: a Vaka trickling its page (a byte every 50 ms, 30
    s for this page) kept a sync in Processing. The whole body must come within the timeout."""
    sim = vaka(3)
    sim.state.drip = 0.05
    client = HttpVakaConnector(
        VakaConnection(sim.url, None, "vaka", "vaka"), timeout=0.5, retries=0
    )
    began = time.monotonic()
    with pytest.raises(VakaUnavailable, match="timed out sending page 1"):
        client.list_users(1, 10)
    assert time.monotonic() - began < 5
    client.close()


def test_a_page_over_the_size_limit_is_unusable(vaka: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A body past MAX_PAGE_BYTES is refused as it arrives, not read whole into memory."""
    monkeypatch.setattr(vaka_connector, "MAX_PAGE_BYTES", 2000)
    sim = vaka(50)
    client = HttpVakaConnector(VakaConnection(sim.url, None, "vaka", "vaka"), retries=0)
    with pytest.raises(VakaDataError, match="page 1 with over 2000 bytes"):
        client.list_users(1, 50)
    assert len(client.list_users(1, 5).users) == 5
    client.close()


# -- where the connector may connect (reach.Reach) -------------------------------------------


def test_a_name_is_connected_by_its_checked_address_keeping_its_host(vaka: Any) -> None:
    """An endpoint by name reaches Vaka at an address the policy checked, with `Host` (and
    TLS) still the name."""
    sim = vaka(3)
    port = sim.server.server_address[1]
    client = HttpVakaConnector(VakaConnection(f"http://localhost:{port}", None, "vaka", "vaka"))
    page = client.list_users(1, 10)
    client.close()
    assert len(page.users) == 3
    assert sim.state.last_host == f"localhost:{port}"


def test_each_address_of_a_name_is_tried_in_turn(
    vaka: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name whose first address refuses the connection is reached at its next, as a connect
    by name would (the resolver, an external boundary, answers for a name of the test's)."""
    sim = vaka(3)
    port = sim.server.server_address[1]
    real = socket.getaddrinfo

    def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != "vaka.test":
            return real(host, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in ("127.0.0.2", "127.0.0.1")  # nothing listens on the first
        ]

    monkeypatch.setattr(reach.socket, "getaddrinfo", resolve)
    client = HttpVakaConnector(VakaConnection(f"http://vaka.test:{port}", None, "vaka", "vaka"))
    assert len(client.list_users(1, 10).users) == 3
    client.close()
    assert sim.state.last_host == f"vaka.test:{port}"


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://0.0.0.0:{port}",  # the unspecified address: Linux connects it to this host
        "http://[::ffff:0.0.0.0]:{port}",
        "http://169.254.169.254:{port}",  # a cloud's metadata service
        "http://[fe80::1]:{port}",
    ],
)
def test_regression_an_endpoint_could_lead_the_server_anywhere(vaka: Any, endpoint: str) -> None:
    """A company administrator's ApiEndpoint made the server connect to any address. By
    default no address a Vaka system cannot have is connected: refused at once, permanently."""
    sim = vaka(3)
    url = endpoint.format(port=sim.server.server_address[1])
    client = HttpVakaConnector(VakaConnection(url, None, "vaka", "vaka"), backoff=5)
    began = time.monotonic()
    with pytest.raises(VakaNotAllowed, match=r"no Vaka system.s .* not connected"):
        client.list_users(1, 10)
    client.close()
    assert time.monotonic() - began < 2  # not retried
    assert sim.state.requests == 0


def test_only_the_configured_networks_are_connected(vaka: Any) -> None:
    """WRITEGATE_BOKAMERA_VAKA_NETWORKS: an address outside its networks is not connected,
    one inside them is."""
    sim = vaka(3)
    conn = VakaConnection(sim.url, None, "vaka", "vaka")
    settings = BokaMeraSettings(vaka_networks="10.0.0.0/8, 192.168.1.7")
    client = vaka_connector.configured_factory(settings)(conn)
    with pytest.raises(VakaNotAllowed, match=f"127.0.0.1: outside the networks of {NETWORKS_ENV}"):
        client.list_users(1, 10)
    client.close()
    assert sim.state.requests == 0
    settings = BokaMeraSettings(vaka_networks="10.0.0.0/8,127.0.0.1/32")
    client = vaka_connector.configured_factory(settings)(conn)
    assert len(client.list_users(1, 10).users) == 3
    client.close()


@pytest.mark.parametrize(
    "value", ["10.0.0.0/8,", "nope", "10.0.0.0/33", "10.0.0.0/8;192.168.0.0/16"]
)
def test_unusable_networks_setting_is_refused(value: str) -> None:
    """A networks setting that is not a list of networks is a bad setting (the process does
    not start), rather than leaving the connector unlimited."""
    with pytest.raises(ValidationError, match="is not a network"):
        BokaMeraSettings(vaka_networks=value)
