"""The core's services, built once per process and shared by every module."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from writegate.core.auth import AuthService
from writegate.core.clock import Clock
from writegate.core.db import Database
from writegate.core.jobs import JobManager, RetryPolicy
from writegate.core.keycache import PrincipalCache
from writegate.core.observability import metrics
from writegate.core.tokens import TokenService
from writegate.core.worker import Registry, Wakeup
from writegate.settings import Settings


@dataclass
class Services:
    """Everything a module may use from the core."""

    settings: Settings
    db: Database
    clock: Clock
    jobs: JobManager
    auth: AuthService
    tokens: TokenService
    registry: Registry
    wakeup: Wakeup
    #: API-key digests of principals seen lately (see `core.http.authenticate`)
    principals: PrincipalCache
    #: free-form per-module state (connector factories, caches); keyed by module name
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Services:
        """Create the database, managers and wake-up signal from settings."""
        clock = clock or Clock()
        db = Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            read_pool_size=settings.db_read_pool_size,
        )
        wakeup = Wakeup()
        jobs = JobManager(
            db,
            clock,
            policy=RetryPolicy(
                max_attempts=settings.job_max_attempts,
                backoff_base=settings.job_backoff_base,
                backoff_max=settings.job_backoff_max,
            ),
            lease_seconds=settings.job_lease_seconds,
            timeout_seconds=settings.job_timeout_seconds,
            wake=wakeup.set,
        )

        principals = PrincipalCache(settings.auth_cache_seconds)
        db.group.on_batch = metrics.group_commit_batch
        db.group.on_writer_busy = metrics.group_commit_writer_busy
        metrics.instrument_pool(db)
        return cls(
            settings=settings,
            db=db,
            clock=clock,
            jobs=jobs,
            auth=AuthService(db, clock, on_revoke=principals.clear),
            tokens=TokenService(clock, settings.token_ttl_seconds),
            registry=Registry(),
            wakeup=wakeup,
            principals=principals,
        )

    def purge_expired_tokens(self) -> int:
        """Delete process tokens that expired more than a day ago."""
        with self.db.write() as s:
            return self.tokens.purge_expired(s)

    def prune_jobs(self) -> int:
        """Delete finished jobs older than the retention setting (none if it is 0)."""
        days = self.settings.job_retention_days
        return self.jobs.prune(timedelta(days=days)) if days > 0 else 0

    async def aclose(self) -> None:
        """`close`, after closing the running event loop's read connections."""
        await self.db.reads.dispose()
        await self.db.detach_loop()
        self.close()

    def close(self) -> None:
        """Release database connections and the wake-up pipe."""
        self.db.dispose()
        self.wakeup.close()
