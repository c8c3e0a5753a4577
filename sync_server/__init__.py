"""The patrol-sync server: Litestar app, sync engine, stores and CLI."""

__all__ = ["__version__"]
__version__ = "0.1.0"
