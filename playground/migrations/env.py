"""Alembic environment of the run store.

Migrations are run by :func:`playground.store.upgrade` (at start-up, and by
``python -m playground.store upgrade``), which hands over an open connection
in ``config.attributes["connection"]``; each migration runs in its own
transaction, so a failing one leaves the previous schema in place.
"""

from alembic import context

from playground.store_schema import METADATA

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=METADATA,
                  transaction_per_migration=True, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
