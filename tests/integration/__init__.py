"""Integration tests against real components: SQLite/PostgreSQL stores, a real MLflow store and server."""
