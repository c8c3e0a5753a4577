"""PostgreSQL store (``postgresql://``): several stateless workers over one database."""

from .store import PostgresStore

__all__ = ["PostgresStore"]
