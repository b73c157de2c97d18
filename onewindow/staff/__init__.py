"""The staff store: who may sign in to the counter app, their sessions and API tokens,
and the append-only access log of what they read (docs/access-control.md).

It lives in the read model's database (``ONEWINDOW_DATABASE_URL``) but has its own
tables and its own migration history (``counter.staff_migrations``, run by the counter app; version table
``alembic_version_staff``): ``onewindow rebuild`` drops and recreates the read model from
the topics, and must never touch the users or the access log.
"""
