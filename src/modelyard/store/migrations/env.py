"""Alembic environment: migrations run on the connection the store hands over."""

from alembic import context

from modelyard.store._schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the store always passes a connection
    raise RuntimeError("modelyard migrations run through MetadataStore, not the alembic CLI")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
context.run_migrations()
