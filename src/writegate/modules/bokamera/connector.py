"""The Axema Vaka connector: the interface the sync uses, and its httpx implementation."""

from __future__ import annotations

import functools
import importlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from writegate.core.lazy import without
from writegate.core.text import check_storable
from writegate.modules.bokamera.reach import NotAllowed, Reach

if TYPE_CHECKING:
    import ssl
    from types import ModuleType

    import httpx

    from writegate.modules.bokamera.settings import BokaMeraSettings

USERS_PATH = "/api/v1/users"
#: the largest page body read from Vaka (a page of 100,000 users is about 20 MB)
MAX_PAGE_BYTES = 32 * 1024 * 1024


@functools.cache
def _httpx() -> ModuleType:
    """httpx, imported when first used (a process that never syncs does not need it) and
    without its command line (click, rich and pygments), which writegate never runs."""
    with without("click", "pygments", "rich"):
        return importlib.import_module("httpx")


class VakaError(Exception):
    """Base class of connector failures."""


class VakaUnavailable(VakaError):
    """Transient: Vaka unreachable, timed out, or answered 429/5xx (worth retrying)."""


class VakaAuthError(VakaError):
    """Permanent: Vaka refused the configured credentials."""


class VakaDataError(VakaError):
    """Permanent: Vaka answered with data the sync cannot use."""


class VakaNotAllowed(VakaError):
    """Permanent: the endpoint leads to an address the server may not connect to (`Reach`)."""


class VakaUser(BaseModel):
    """One Axema Vaka user, as the sync needs it."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=100)
    firstName: str | None = Field(default=None, max_length=100)
    lastName: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    cardNumber: str | None = Field(default=None, max_length=50)

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, v: Any) -> Any:
        return check_storable(v)  # PostgreSQL's text cannot hold a NUL, and SQLite's would


@dataclass(frozen=True)
class VakaPage:
    """One page of users and whether more follow."""

    users: list[VakaUser]
    page: int
    has_more: bool
    total: int | None = None


@dataclass(frozen=True)
class VakaConnection:
    """Where and as whom to reach a company's Vaka system."""

    endpoint: str
    port: int | None
    username: str
    password: str

    @property
    def base_url(self) -> str:
        """Endpoint with the port applied (the endpoint may already carry one)."""
        httpx = _httpx()

        url = httpx.URL(self.endpoint)
        if self.port is not None:
            url = url.copy_with(port=self.port)
        return str(url).rstrip("/")


class VakaConnector(Protocol):
    """What the sync needs from an Axema Vaka system: its users, page by page (1-based)."""

    def list_users(self, page: int, page_size: int) -> VakaPage:
        """One page of users; raise VakaUnavailable, VakaAuthError or VakaDataError."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


ConnectorFactory = Callable[[VakaConnection], VakaConnector]


def parse_page(data: Any, page: int) -> VakaPage:
    """Validate one `GET /api/v1/users` answer."""
    if not isinstance(data, dict) or not isinstance(data.get("users"), list):
        raise VakaDataError(f"page {page}: expected an object with a 'users' list")
    users = []
    for i, item in enumerate(data["users"]):
        try:
            users.append(VakaUser.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "user"
            raise VakaDataError(f"page {page}, user #{i + 1}: {where}: {first['msg']}") from None
    has_more = data.get("hasMore")
    if not isinstance(has_more, bool):
        raise VakaDataError(f"page {page}: 'hasMore' must be true or false")
    total = data.get("totalCount")
    return VakaPage(users, page, has_more, total if isinstance(total, int) else None)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context every Vaka client of this process shares (certificates verified).

    Building one reads the whole CA bundle: a context per sync was an eighth of `serve`'s CPU
    in the load test. httpx's own default, so SSL_CERT_FILE and SSL_CERT_DIR still apply.
    """
    context: ssl.SSLContext = _httpx().create_ssl_context()
    return context


@functools.cache
def _pinned_transport_class() -> Callable[[Reach, ssl.SSLContext], httpx.BaseTransport]:
    _httpx()  # loaded without its command line
    import httpx

    class PinnedTransport(httpx.HTTPTransport):
        """Connects each request to an address of its host that `reach` permits, and to no
        other: the host is resolved here, so a name cannot resolve anew between the check
        and the connection. The request keeps its host in `Host` and in TLS (SNI and the
        certificate's name)."""

        def __init__(self, reach: Reach, verify: ssl.SSLContext) -> None:
            super().__init__(verify=verify)
            self.reach = reach

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            url = request.url
            port = url.port or (443 if url.scheme == "https" else 80)
            try:
                addresses = self.reach.addresses_of(url.host, port)
            except OSError as exc:
                raise httpx.ConnectError(f"{url.host} does not resolve: {exc}") from None
            if url.host not in addresses:  # a name: its TLS and Host header stay the name's
                request.extensions = {**request.extensions, "sni_hostname": url.host}
            for address in addresses[:-1]:  # as a connect by name tries each address
                request.url = url.copy_with(host=address)
                try:
                    return super().handle_request(request)
                except httpx.ConnectError:
                    continue
            request.url = url.copy_with(host=addresses[-1])
            return super().handle_request(request)

    return PinnedTransport


class HttpVakaConnector:
    """Talks to Vaka's REST API over httpx with timeouts and a few quick retries.

    Without a `transport` of the caller's, it connects only where `reach` permits.
    """

    def __init__(
        self,
        conn: VakaConnection,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
        reach: Reach | None = None,
    ) -> None:
        httpx = _httpx()

        if transport is None:
            transport = _pinned_transport_class()(reach or Reach(), tls_context())
        self.conn = conn
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._client = httpx.Client(
            base_url=conn.base_url,
            auth=httpx.BasicAuth(conn.username, conn.password),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"accept": "application/json"},
            verify=tls_context(),
            transport=transport,
        )

    def list_users(self, page: int, page_size: int) -> VakaPage:
        """One page of users, retrying transient failures a few times before giving up."""
        attempt = 0
        while True:
            try:
                return self._fetch(page, page_size)
            except VakaUnavailable:
                attempt += 1
                if attempt > self.retries:
                    raise
                time.sleep(self.backoff * 2 ** (attempt - 1))

    def _fetch(self, page: int, page_size: int) -> VakaPage:
        httpx = _httpx()

        where = f"Axema Vaka at {self.conn.base_url}"
        params = {"page": page, "pageSize": page_size}
        deadline = time.monotonic() + self.timeout
        try:
            # Streamed, so the page's body is ours alone: a response keeps what `read()`
            # stored in reference cycles of httpx's objects, freed only by a collection.
            with self._client.stream("GET", USERS_PATH, params=params) as resp:
                status = resp.status_code
                body = _body(resp, deadline, where, page) if status == 200 else b""
        except NotAllowed as exc:
            raise VakaNotAllowed(f"{where}: {exc}") from None
        except httpx.TimeoutException:
            raise VakaUnavailable(f"{where} timed out") from None
        except httpx.HTTPError as exc:
            raise VakaUnavailable(f"{where} unreachable: {type(exc).__name__}: {exc}") from None
        if status in (401, 403):
            raise VakaAuthError(
                f"{where} rejected the credentials of user {self.conn.username!r} (HTTP {status})"
            )
        if status == 429 or status >= 500:
            raise VakaUnavailable(f"{where} answered HTTP {status}")
        if status != 200:
            raise VakaDataError(f"{where} answered HTTP {status} for {USERS_PATH}")
        try:
            data = json.loads(body)
        except ValueError:
            raise VakaDataError(f"{where} answered page {page} with invalid JSON") from None
        return parse_page(data, page)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def _body(resp: httpx.Response, deadline: float, where: str, page: int) -> bytes:
    """A page's body, read whole by `deadline` and within `MAX_PAGE_BYTES`."""
    # httpx's read timeout is per chunk: a body sent a byte at a time would never time out.
    chunks, size = [], 0
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > MAX_PAGE_BYTES:
            raise VakaDataError(f"{where} answered page {page} with over {MAX_PAGE_BYTES} bytes")
        if time.monotonic() > deadline:
            raise VakaUnavailable(f"{where} timed out sending page {page}")
        chunks.append(chunk)
    return b"".join(chunks)


def http_connector(conn: VakaConnection, reach: Reach | None = None) -> VakaConnector:
    """The default factory: the httpx connector."""
    return HttpVakaConnector(conn, reach=reach)


def configured_factory(settings: BokaMeraSettings) -> ConnectorFactory:
    """The factory `settings.connector` names, else the httpx connector limited to the
    networks of `settings.vaka_networks`."""
    custom: ConnectorFactory | None = settings.custom_connector()
    if custom is None:
        return functools.partial(http_connector, reach=settings.reach())
    return custom
