"""Alembic environment; the core's revisions are in versions/, each module's in its own folder."""
