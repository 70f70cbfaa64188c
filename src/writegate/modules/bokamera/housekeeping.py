"""BokaMera's job side: forgetting syncs whose job the retention pruned (workers load this)."""

from __future__ import annotations

from sqlalchemy import delete, exists

from writegate.core.jobs import JobRow
from writegate.core.services import Services
from writegate.modules.bokamera.models import UserSyncRow

#: syncs whose job is gone: pruned with the jobs (`WRITEGATE_JOB_RETENTION_DAYS`)
_PRUNED_SYNCS = delete(UserSyncRow).where(~exists().where(JobRow.id == UserSyncRow.id))


def forget_pruned_syncs(services: Services) -> int:
    """Delete the syncs whose job the job retention deleted; how many."""
    with services.db.write() as s:
        return s.connection().execute(_PRUNED_SYNCS).rowcount
