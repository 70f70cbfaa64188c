"""The worker: claims jobs in batches, runs their handlers, keeps leases alive."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from writegate.core.clock import Clock
from writegate.core.exceptions import LeaseLost, PermanentJobError, UnknownJobKind
from writegate.core.jobs import NOTIFY_CHANNEL, Job, JobManager, RetryPolicy, Status

log = logging.getLogger("writegate.worker")

Handler = Callable[["JobContext"], Any]


@dataclass(frozen=True)
class JobSpec:
    """A job kind, its handler and its retry policy."""

    kind: str
    handler: Handler
    policy: RetryPolicy | None = None
    #: Opt-in fast path for short handlers that only write through ctx.session: claimed jobs
    #: of this kind run back to back in one transaction (claim, run, finish: one commit per
    #: batch). Such a handler must not use ctx.checkpoint() or wait on anything slow, since
    #: it holds the write transaction (on SQLite, the single writer) while it runs.
    batch: bool = False


class Registry:
    """Job kinds known to this process."""

    def __init__(self) -> None:
        self._specs: dict[str, JobSpec] = {}

    def add(self, spec: JobSpec) -> None:
        """Register a job kind; a kind may be registered once."""
        if spec.kind in self._specs:
            raise ValueError(f"job kind {spec.kind!r} registered twice")
        self._specs[spec.kind] = spec

    def get(self, kind: str) -> JobSpec:
        """The spec of a kind."""
        try:
            return self._specs[kind]
        except KeyError:
            raise UnknownJobKind(kind) from None

    def kinds(self) -> list[str]:
        """Every registered kind."""
        return sorted(self._specs)

    def batched_kinds(self) -> list[str]:
        """Kinds that run in shared batch transactions."""
        return sorted(k for k, s in self._specs.items() if s.batch)

    def threaded_kinds(self) -> list[str]:
        """Kinds that run one per handler thread."""
        return sorted(k for k, s in self._specs.items() if not s.batch)

    def policies(self) -> dict[str, RetryPolicy]:
        """Per-kind retry policies that override the default."""
        return {k: s.policy for k, s in self._specs.items() if s.policy is not None}


class Wakeup:
    """An in-process signal that new work may be due; a wait may also watch one socket."""

    # A self-pipe rather than a threading.Event: the dispatcher's one poll() then also watches
    # its LISTEN socket on PostgreSQL, so a NOTIFY wakes it with no thread hand-off.
    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._lock = threading.Lock()
        self._closed = False
        self._pending = False

    def set(self) -> None:
        """Wake any waiting worker."""
        with self._lock:
            # One pending byte is enough: no syscall per commit when no one is waiting.
            if self._closed or self._pending:
                return
            self._pending = True
            with contextlib.suppress(BlockingIOError):
                os.write(self._w, b"\0")

    def wait(self, timeout: float, fd: int | None = None) -> bool:
        """Wait for a wake-up, for `fd` to be readable or for the timeout; report if woken."""
        if self._closed:
            return True  # shutting down: the caller's loop is about to see its stop flag
        poller = select.poll()
        poller.register(self._r, select.POLLIN)
        if fd is not None:
            poller.register(fd, select.POLLIN)
        woke = bool(poller.poll(max(0.0, timeout) * 1000))
        # Drained, then cleared: a set() before the clear is covered by the claim that follows
        # this wait, and one after it writes a byte for the next wait.
        with contextlib.suppress(OSError):  # BlockingIOError once empty
            while os.read(self._r, 4096):
                pass
        with self._lock:
            self._pending = False
        return woke

    def close(self) -> None:
        """Release the pipe; later set() calls do nothing."""
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._r)
                os.close(self._w)


class _Listener:
    """The dispatcher's LISTEN connection (PostgreSQL), read by the dispatcher itself."""

    def __init__(self, dsn: str, name: str) -> None:
        self._dsn = dsn
        #: its application_name, so pg_stat_activity tells which worker a LISTEN backend serves
        self.name = name[:63]
        self._conn: Any = None

    def ensure(self) -> tuple[int | None, bool]:
        """The socket to watch (None while the database is unreachable), and if it is new."""
        import psycopg

        if self._conn is not None:
            try:
                return self._conn.fileno(), False
            except psycopg.Error:
                self.close()
        try:
            conn = psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=5, application_name=self.name
            )
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except psycopg.Error:
            log.warning("LISTEN connection failed; polling until it is back", exc_info=True)
            return None, False
        self._conn = conn
        return conn.fileno(), True

    def drain(self) -> None:
        """Read what arrived; any NOTIFY on the channel means the same: claim."""
        import psycopg

        if self._conn is None:
            return
        try:
            pgconn = self._conn.pgconn
            pgconn.consume_input()
            while pgconn.notifies() is not None:
                pass
        except psycopg.Error:
            log.warning("LISTEN connection lost; reconnecting", exc_info=True)
            self.close()

    def close(self) -> None:
        """Close the connection (it is reopened by the next ensure())."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


class JobContext:
    """What a handler gets: the job, and the transactions it may use."""

    def __init__(
        self,
        manager: JobManager,
        job: Job,
        worker_id: str,
        open_session: Callable[[], Session] | None = None,
    ) -> None:
        self.manager = manager
        self.job = job
        self.worker_id = worker_id
        self.clock: Clock = manager.clock
        self._session: Session | None = None
        #: batch jobs: opens the shared batch transaction (in this job's savepoint)
        self._open = open_session
        self._stack = contextlib.ExitStack()
        self.progress: Any = job.progress

    @property
    def payload(self) -> Any:
        """The job's payload."""
        return self.job.payload

    @property
    def session(self) -> Session:
        """The job's final transaction: writes here commit together with the job's success."""
        if self._session is None:
            if self._open is not None:
                self._session = self._open()
            else:
                self._session = self._stack.enter_context(self.manager.db.write())
        return self._session

    @contextlib.contextmanager
    def checkpoint(self) -> Iterator[Session]:
        """A separate committed transaction for one step of a long job (lease-fenced)."""
        if self._session is not None or self._open is not None:
            raise RuntimeError(
                "checkpoint() cannot be used after ctx.session was opened (or in a batch job)"
            )
        with self.manager.db.write() as s:
            yield s

    def save(self, session: Session, *, progress: Any = None, checkpoint: Any = None) -> None:
        """Store progress counters and resume state in `session`, fenced by the lease."""
        self.manager.checkpoint(
            session, self.job, self.worker_id, progress=progress, checkpoint=checkpoint
        )
        if progress is not None:
            self.progress = progress

    def _finish(self, result: Any) -> None:
        try:
            self.manager.complete(self.session, self.job, self.worker_id, result, self.progress)
        except BaseException:
            self._stack.__exit__(*_exc_info())
            raise
        self._stack.close()

    def _abort(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)


def _exc_info() -> tuple[Any, Any, Any]:
    import sys

    return sys.exc_info()


def default_worker_id() -> str:
    """host:pid:random, unique per worker instance."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Claims and runs jobs with up to `concurrency` handler threads."""

    def __init__(
        self,
        manager: JobManager,
        registry: Registry,
        *,
        concurrency: int = 4,
        batch_size: int = 64,
        poll_interval: float = 1.0,
        reaper_interval: float = 5.0,
        wakeup: Wakeup | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.manager = manager
        self.registry = registry
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.reaper_interval = reaper_interval
        self._owns_wakeup = wakeup is None
        self.wakeup = wakeup or Wakeup()
        self.worker_id = worker_id or default_worker_id()
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.processed = 0

    # -- life cycle -----------------------------------------------------------

    def start(self) -> None:
        """Start the dispatcher (which LISTENs on PostgreSQL) and the lease keeper."""
        self.manager.policies.update(self.registry.policies())
        targets: list[tuple[str, Callable[[], None]]] = [
            ("dispatch", self._dispatch_loop),
            ("leases", self._lease_loop),
        ]
        for name, fn in targets:
            t = threading.Thread(target=fn, name=f"writegate-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("worker %s started (concurrency %d)", self.worker_id, self.concurrency)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming, wait for running handlers up to timeout."""
        self._stop.set()
        self.wakeup.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for t in list(self._running.values()):
            t.join(max(0.0, deadline - time.monotonic()))
        if self._owns_wakeup and not any(t.is_alive() for t in self._threads):
            self.wakeup.close()

    def run_forever(self) -> None:
        """Start and block until stopped."""
        self.start()
        while not self._stop.wait(1.0):
            pass
        self.stop()

    @property
    def stopping(self) -> bool:
        """True once stop() was called."""
        return self._stop.is_set()

    # -- loops ----------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        listener = None
        if self.manager.db.is_postgres:
            url = self.manager.db.engine.url.set(drivername="postgresql")
            listener = _Listener(
                url.render_as_string(hide_password=False), f"writegate listen {self.worker_id}"
            )
        try:
            self._dispatch(listener)
        finally:
            if listener is not None:
                listener.close()

    def _dispatch(self, listener: _Listener | None) -> None:
        kinds = self.registry.threaded_kinds()
        batched = self.registry.batched_kinds()
        while not self._stop.is_set():
            full_batch = False
            if batched:
                try:
                    done = self.manager.run_batch(
                        self.worker_id, batched, self.batch_size, self._run_in_batch
                    )
                except Exception:
                    log.exception("batch run failed; retrying after poll interval")
                    self._stop.wait(self.poll_interval)
                    continue
                self._count_batch(done)
                full_batch = len(done) >= self.batch_size
            with self._lock:
                free = self.concurrency - len(self._running)
            claimed: list[Job] = []
            if free > 0 and kinds:
                try:
                    claimed = self.manager.claim(self.worker_id, kinds, free)
                except Exception:
                    log.exception("claim failed; retrying after poll interval")
                    self._stop.wait(self.poll_interval)
                    continue
            for job in claimed:
                t = threading.Thread(
                    target=self._run, args=(job,), name=f"writegate-job-{job.id}", daemon=True
                )
                with self._lock:
                    self._running[job.id] = t
                t.start()
            if not full_batch and (len(claimed) < free or free <= 0):
                self._idle(listener)

    def _idle(self, listener: _Listener | None) -> None:
        if listener is None:
            self.wakeup.wait(self.poll_interval)
            return
        fd, new = listener.ensure()
        if new:
            return  # commits made while it was not listening sent their NOTIFY to no one
        # Without a LISTEN socket, retry it at least every second (and poll meanwhile).
        timeout = self.poll_interval if fd is not None else min(self.poll_interval, 1.0)
        self.wakeup.wait(timeout, fd)
        listener.drain()

    def _run_in_batch(self, open_session: Callable[[], Session], job: Job) -> Any:
        return self.registry.get(job.kind).handler(
            JobContext(self.manager, job, self.worker_id, open_session)
        )

    def _count_batch(self, done: list[tuple[Job, Status]]) -> None:
        for job, status in done:
            if status is not Status.SUCCEEDED:
                log.info("job %s attempt %d failed: %s", job.id, job.attempts, status.value)
        if done:
            with self._lock:
                self.processed += len(done)
            if any(status is Status.QUEUED for _, status in done):
                self.wakeup.set()

    def _lease_loop(self) -> None:
        interval = max(0.05, self.manager.lease_seconds / 3)
        last_reap = 0.0
        while not self._stop.wait(interval):
            with self._lock:
                ids = list(self._running)
            try:
                if ids:
                    owned = self.manager.heartbeat(self.worker_id, ids)
                    for lost in set(ids) - owned:
                        with self._lock:
                            # A job that finished meanwhile is not lost; only still-running ones.
                            if self._running.pop(lost, None) is None:
                                continue
                        # A hung handler stops counting against capacity once abandoned.
                        log.warning("job %s: lease no longer held by this worker", lost)
                if time.monotonic() - last_reap >= self.reaper_interval:
                    last_reap = time.monotonic()
                    if self.manager.requeue_stalled():
                        self.wakeup.set()
            except Exception:
                log.exception("lease upkeep failed")

    # -- one job --------------------------------------------------------------

    def _run(self, job: Job) -> None:
        ctx = JobContext(self.manager, job, self.worker_id)
        try:
            spec = self.registry.get(job.kind)
            result = spec.handler(ctx)
            ctx._finish(result)
            log.debug("job %s (%s) succeeded", job.id, job.kind)
        except LeaseLost:
            ctx._abort()
            log.warning("job %s: lease lost; its writes were rolled back", job.id)
        except Exception as exc:
            ctx._abort()
            permanent = isinstance(exc, PermanentJobError | UnknownJobKind)
            message = str(exc) or type(exc).__name__
            if not permanent:
                log.info("job %s attempt %d failed: %s", job.id, job.attempts, message)
                log.debug("%s", traceback.format_exc())
            try:
                self.manager.fail(job, self.worker_id, message, retryable=not permanent)
            except Exception:
                log.exception("could not record failure of job %s", job.id)
        finally:
            with self._lock:
                # A later attempt of the same job may own the slot by now; leave it be.
                if self._running.get(job.id) is threading.current_thread():
                    del self._running[job.id]
                self.processed += 1
            self.wakeup.set()
