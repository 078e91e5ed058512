"""Alembic environment: migrations run from the package, configured in code by campaigns.db."""

from alembic import context

from campaigns.db import make_engine
from campaigns.models import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = context.config.attributes.get("connection")
    if connectable is not None:
        context.configure(connection=connectable, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # A batch migration rebuilds a table by dropping it: with foreign keys on, the
                # drop would cascade to the rows that refer to it. The pragma only works
                # outside a transaction, so it goes to the driver's connection directly.
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations_online()
