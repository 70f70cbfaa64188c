"""Vaka pages in order, the next one fetched while the sync writes the last."""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import Future

from writegate.modules.bokamera.connector import VakaConnector, VakaPage


class PageReader:
    """Reads pages first, first + 1, ... of a connector, one page ahead on a thread of its own.

    Fetching ahead changes nothing that is stored: a page is only written (and the sync's
    checkpoint moved past it) by the caller, so a page fetched but never written is fetched
    again by the next attempt. A fetch's error is raised by the `next()` that takes its page.
    """

    def __init__(self, connector: VakaConnector, first: int, size: int) -> None:
        self._connector = connector
        self._size = size
        self._thread: threading.Thread | None = None
        self._ahead: Future[VakaPage] | None = self._fetch(first)
        self._number = first

    def _fetch(self, number: int) -> Future[VakaPage]:
        """Fetch a page on a daemon thread: a page still on its way when the process exits
        (its job handed back at shutdown) does not hold the exit, as an executor's would."""
        future: Future[VakaPage] = Future()
        run = contextvars.copy_context().run  # the job's log and trace context

        def fetch() -> None:
            try:
                future.set_result(run(self._connector.list_users, number, self._size))
            except BaseException as exc:
                future.set_exception(exc)

        self._thread = threading.Thread(target=fetch, name="vaka-pages", daemon=True)
        self._thread.start()
        return future

    def next(self) -> VakaPage:
        """The next page; the one after it is fetched meanwhile if this one says more follow."""
        assert self._ahead is not None, "no page follows the last one"
        page = self._ahead.result()
        self._number += 1
        self._ahead = self._fetch(self._number) if page.has_more and page.users else None
        return page

    def close(self) -> None:
        """Wait for a fetch under way (its page is dropped)."""
        if self._thread is not None:
            self._thread.join()
