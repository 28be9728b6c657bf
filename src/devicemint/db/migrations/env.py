"""Alembic environment: runs against the engine devicemint passes in (no alembic.ini)."""

from alembic import context

from devicemint.db.schema import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
