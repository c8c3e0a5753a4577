from .store import SqliteStore, path_from_url

__all__ = ["SqliteStore", "path_from_url"]
