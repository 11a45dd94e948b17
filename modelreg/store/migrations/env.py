"""Alembic environment: always online, on the connection modelreg.store.schema hands over."""

from alembic import context

from modelreg.store.schema import VERSION_TABLE
from modelreg.store.tables import Base

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things in place
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
