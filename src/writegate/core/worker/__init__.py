"""The worker: job kinds, the wake-up, the handler's context and the claim-and-run loop."""

from writegate.core.worker.context import JobContext
from writegate.core.worker.registry import BatchHandler, Handler, JobSpec, Registry
from writegate.core.worker.wakeup import Wakeup
from writegate.core.worker.worker import Worker, default_worker_id

__all__ = [
    "BatchHandler",
    "Handler",
    "JobContext",
    "JobSpec",
    "Registry",
    "Wakeup",
    "Worker",
    "default_worker_id",
]
