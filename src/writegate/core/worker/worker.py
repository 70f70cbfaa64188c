"""The worker: claims jobs, runs them (short ones in the group commit), keeps leases alive."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from concurrent.futures import Future, wait
from typing import Any

from writegate.core.exceptions import LeaseLost
from writegate.core.jobs import Job, JobManager, Successes
from writegate.core.observability import metrics
from writegate.core.worker.context import JobContext
from writegate.core.worker.failures import Failures
from writegate.core.worker.handback import HandBacks
from writegate.core.worker.listener import Listener
from writegate.core.worker.registry import JobSpec, Registry
from writegate.core.worker.short import ShortJobs, error_of, observed, outcome_of
from writegate.core.worker.threads import HandlerThreads
from writegate.core.worker.wakeup import Wakeup

log = logging.getLogger("writegate.worker")


def default_worker_id() -> str:
    """host:pid:random, unique per worker instance."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _started(job: Job) -> None:
    """Count a claimed attempt, and its wait since it was due (created or retry time)."""
    metrics.job_started(job.kind, max(job.created_at, job.run_after), job.started_at)


class Worker:
    """Claims and runs jobs: short kinds in the group commit, the others on handler threads."""

    def __init__(
        self,
        manager: JobManager,
        registry: Registry,
        *,
        concurrency: int = 16,
        short_in_flight: int = 64,
        poll_interval: float = 1.0,
        reaper_interval: float = 5.0,
        wakeup: Wakeup | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.manager = manager
        self.registry = registry
        #: handler threads for the kinds that are not short
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.reaper_interval = reaper_interval
        self._owns_wakeup = wakeup is None
        self.wakeup = wakeup or Wakeup()
        self.worker_id = worker_id or default_worker_id()
        #: jobs on handler threads, each with the event its run sets when it is over
        self._running: dict[str, tuple[threading.Event, Job]] = {}
        self._handlers = HandlerThreads("writegate-job")
        #: jobs whose handler returned and whose success waits in the group commit
        self._settling: dict[str, Future[Any]] = {}
        #: jobs given back to the queue at `stop` while their handler still ran
        self._handed_back = HandBacks(manager, self.worker_id)
        self._successes = Successes(manager, self.worker_id)
        #: short jobs, queued in the group commit
        self.short = ShortJobs(manager, registry, self.worker_id, short_in_flight, self._done)
        self._lock = threading.Lock()
        #: held while the dispatcher decides and claims: `pause` waits for a claim under way
        self._dispatching = threading.Lock()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._threads: list[threading.Thread] = []
        self.processed = 0
        #: whether the last claim of short kinds, and of the others, took all the room there
        #: was: only then does a job that settles wake the dispatcher (new jobs wake it anyway)
        self._short_full = True
        self._threads_full = True

    # -- life cycle -----------------------------------------------------------

    def start(self) -> None:
        """Start the dispatcher (which LISTENs on PostgreSQL) and the lease keeper."""
        self.manager.policies.update(self.registry.policies())
        self.manager.handoff = self
        for name, fn in (("dispatch", self._dispatch_loop), ("leases", self._lease_loop)):
            t = threading.Thread(target=fn, name=f"writegate-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("worker %s started (concurrency %d)", self.worker_id, self.concurrency)

    def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let running jobs finish within `grace`, then hand the rest back."""
        self._stop.set()
        if self.manager.handoff is self:
            self.manager.handoff = None
        self.wakeup.set()
        deadline = time.monotonic() + grace
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            running = list(self._running.values())
        for over, _ in running:
            over.wait(max(0.0, deadline - time.monotonic()))
        self._handed_back.give_back([job for over, job in running if not over.is_set()])
        self._handlers.close()
        with self._lock:
            settling = list(self._settling.values())
        wait(settling, max(0.0, deadline - time.monotonic()))
        if self._owns_wakeup and not any(t.is_alive() for t in self._threads):
            self.wakeup.close()

    def _record_failure(self, job: Job, exc: Exception) -> str:
        """Settle a failed attempt (retry or fail); its outcome."""
        message, retryable = error_of(exc)
        if retryable:
            log.info("job %s attempt %d failed: %s", job.id, job.attempts, message)
            log.debug("%s", traceback.format_exc())
        try:
            status = self.manager.fail(job, self.worker_id, message, retryable=retryable)
        except Exception:
            log.exception("could not record failure of job %s", job.id)
            return "lost"
        return outcome_of(status)

    def pause(self) -> None:
        """Stop claiming new jobs (running ones go on) until `resume`; once it returns, no
        claim is under way and no new job is handed over (jobs handed over to it before
        then still start when their transaction commits)."""
        self._paused.set()
        with self._dispatching:
            pass

    def resume(self) -> None:
        """Claim again after `pause`."""
        self._paused.clear()
        self.wakeup.set()

    def request_stop(self) -> None:
        """Ask `run_forever` to stop (safe from a signal handler)."""
        self._stop.set()
        self.wakeup.set()

    def run_forever(self, grace: float = 10.0) -> None:
        """Start and block until `request_stop`; then stop with `grace` (see `stop`)."""
        self.start()
        while not self._stop.wait(1.0):
            pass
        log.info("worker %s stopping: running jobs have %g s to finish", self.worker_id, grace)
        self.stop(grace)

    @property
    def state(self) -> str:
        """'running', 'paused', 'stopped', 'not started', or 'dead' (a loop thread ended)."""
        if self._stop.is_set():
            return "stopped"
        if not self._threads:
            return "not started"
        if not all(t.is_alive() for t in self._threads):
            return "dead"
        return "paused" if self._paused.is_set() else "running"

    @property
    def stopping(self) -> bool:
        """True once stop() was called."""
        return self._stop.is_set()

    def running_jobs(self) -> list[str]:
        """Ids of the jobs on handler threads now."""
        with self._lock:
            return list(self._running)

    # -- new jobs of this process, started as they are written (`Handoff`) ---------

    def room(self, kind: str) -> int:
        """How many new jobs of kind to start as they are written: short kinds only, while
        running and with no backlog (the last claim of short kinds did not fill its room)."""
        if self._short_full or self._paused.is_set() or self._stop.is_set():
            return 0
        return self.short.room() if self.registry.is_short(kind) else 0

    def take(self, jobs: list[Job]) -> None:
        """Run short jobs committed as this worker's running attempt: claimed, or handed over
        as they were written (see `room`)."""
        for job in jobs:
            _started(job)
            self.short.run(job)

    # -- dispatch -------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        listener = None
        if self.manager.db.is_postgres:
            url = self.manager.db.engine.url.set(drivername="postgresql")
            listener = Listener(
                url.render_as_string(hide_password=False), f"writegate listen {self.worker_id}"
            )
        failures = Failures(log, "dispatch (retried after each poll interval)")
        try:
            while not self._stop.is_set():
                try:
                    self._dispatch_step(listener)
                    failures.succeeded()
                except Exception as exc:
                    # Whatever failed (the claim, the LISTEN socket), the dispatcher goes on:
                    # were its thread to end, this worker would never claim again.
                    failures.failed(exc)
                    if listener is not None:
                        listener.close()
                    self._stop.wait(self.poll_interval)
        finally:
            if listener is not None:
                listener.close()

    def _dispatch_step(self, listener: Listener | None) -> None:
        """Claim what there is room for, then wait for a reason to claim again."""
        # Before the claim, not after the wait: the wake-ups (and NOTIFYs) that came while
        # the last claim ran are covered by this one, not each a claim of its own.
        self.wakeup.clear()
        if listener is not None:
            listener.drain()
        with self._dispatching:
            busy = None if self._paused.is_set() else self._dispatch_once()
        if busy is None:
            self.wakeup.wait(self.poll_interval)
        elif not busy:
            self._idle(listener)

    def _dispatch_once(self) -> bool:
        """Claim what there is room for; True if a claim filled its room (more may be due)."""
        full = False
        # Full until a claim shows otherwise, set before the room is read: a job that
        # settles meanwhile then wakes the dispatcher rather than leave it asleep.
        self._short_full = self._threads_full = True
        with self._lock:
            free_threads = self.concurrency - len(self._running)
        free_short = self.short.room()
        short_kinds = self.short.kinds() if free_short > 0 else []
        long_kinds = self.registry.kinds(short=False) if free_threads > 0 else []
        claimed = self.manager.claim(
            self.worker_id, short_kinds, free_short, also=(long_kinds, free_threads)
        )
        is_short = set(short_kinds)
        short = [job for job in claimed if job.kind in is_short]
        threaded = [job for job in claimed if job.kind not in is_short]
        if short_kinds:
            full = self._short_full = len(short) == free_short
        if long_kinds:
            self._threads_full = len(threaded) == free_threads
            full = full or self._threads_full
        self.take(short)
        for job in threaded:
            _started(job)
            self._start_thread(job)
        return full

    def _idle(self, listener: Listener | None) -> None:
        if listener is None:
            self.wakeup.wait(self.poll_interval)
            return
        fd, new = listener.ensure()
        if new:
            return  # commits made while it was not listening sent their NOTIFY to no one
        # Without a LISTEN socket, retry it at least every second (and poll meanwhile).
        deadline = time.monotonic() + (
            self.poll_interval if fd is not None else min(self.poll_interval, 1.0)
        )
        # A NOTIFY sent by this process's own connections is skipped: the commit that sent
        # it set the in-process wake-up too (measured: a third of the claims on PostgreSQL
        # found nothing, each the second wake-up of one commit).
        while self.wakeup.wait(deadline - time.monotonic(), fd):
            if self.wakeup.pending or listener.drain(self.manager.db.backends):
                return

    def _done(self) -> None:
        """A short job was settled: count it; claim again if the last claim ran out of room."""
        with self._lock:
            self.processed += 1
        if self._short_full:
            self.wakeup.set()

    # -- other jobs: one handler thread each ------------------------------------------

    def _start_thread(self, job: Job) -> None:
        over = threading.Event()
        with self._lock:
            self._running[job.id] = (over, job)
        self._handlers.run(self._run, job, over)

    def _run(self, job: Job, over: threading.Event) -> None:
        try:
            with observed(job):
                self._run_bound(job, over)
        finally:
            over.set()

    def _run_bound(self, job: Job, over: threading.Event) -> None:
        log.debug("job %s (%s) attempt %d started", job.id, job.kind, job.attempts)
        ctx = JobContext(self.manager, job, self.worker_id, successes=self._successes)
        began = time.perf_counter()
        outcome = "lost"
        settling: Future[Any] | None = None
        try:
            spec: JobSpec = self.registry.get(job.kind)
            result = spec.run(ctx)
            settling = ctx._finish(result)
            outcome = "succeeded"
            log.debug("job %s (%s) succeeded", job.id, job.kind)
        except LeaseLost:
            ctx._abort()
            if job in self._handed_back:
                outcome = "handed_back"
            else:
                log.warning("job %s: lease lost; its writes were rolled back", job.id)
        except Exception as exc:
            ctx._abort()
            if job in self._handed_back:  # its end is the next attempt's business
                outcome = "handed_back"
                log.info("job %s: its handler ended after it was handed back", job.id)
            else:
                outcome = self._record_failure(job, exc)
        finally:
            with self._lock:
                # A later attempt of the same job may own the slot by now; leave it be.
                entry = self._running.get(job.id)
                if entry is not None and entry[0] is over:
                    del self._running[job.id]
                if settling is not None:
                    self._settling[job.id] = settling
            if settling is None:
                self._finished(job, outcome, began)
            else:  # the thread's slot is free now; the success commits meanwhile
                settling.add_done_callback(lambda f: self._settled(job, f, began))
            if self._threads_full:
                self.wakeup.set()

    def _settled(self, job: Job, future: Future[Any], began: float) -> None:
        """A job's queued success was committed, or refused (on the group's committer thread)."""
        error = future.exception()
        outcome = "succeeded" if error is None else "lost"
        if isinstance(error, LeaseLost):
            log.warning("job %s: lease lost before its success was recorded", job.id)
        elif error is not None:
            log.error(
                "job %s: its success was not recorded (%s); it runs again once its lease expires",
                job.id,
                error,
            )
        with self._lock:
            self._settling.pop(job.id, None)
        self._finished(job, outcome, began)

    def _finished(self, job: Job, outcome: str, began: float) -> None:
        metrics.job_finished(job.kind, outcome, time.perf_counter() - began)
        with self._lock:
            self.processed += 1

    # -- leases -----------------------------------------------------------------

    def _lease_loop(self) -> None:
        interval = max(0.05, self.manager.lease_seconds / 3)
        last_reap = 0.0
        failures = Failures(log, "lease upkeep")
        while not self._stop.wait(interval):
            try:
                self._keep_leases()
                if time.monotonic() - last_reap >= self.reaper_interval:
                    last_reap = time.monotonic()
                    if self.manager.requeue_stalled() + self.manager.release_orphans():
                        self.wakeup.set()
                failures.succeeded()
            except Exception as exc:
                failures.failed(exc)

    def _keep_leases(self) -> None:
        # Short jobs too: under load they may wait in the group commit longer than a lease.
        with self._lock:
            settling = list(self._settling)
        ids = self.running_jobs() + settling + self.short.active()
        if not ids:
            return
        owned = self.manager.heartbeat(self.worker_id, ids)
        for lost in set(ids) - owned:
            with self._lock:
                # A job that finished meanwhile is not lost; only still-running ones.
                if self._running.pop(lost, None) is None:
                    continue
            # A hung handler stops counting against capacity once abandoned.
            log.warning("job %s: lease no longer held by this worker", lost)
