"""HTTP controllers, one module per resource. They never touch a database driver."""

from .admin import AdminController
from .health import health
from .sync import SyncController

__all__ = ["AdminController", "SyncController", "health"]
