"""Persistence: SQLAlchemy 2 schema, the database handle, Alembic migrations."""
