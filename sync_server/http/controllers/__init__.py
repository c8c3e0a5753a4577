"""HTTP controllers, one module per resource: read the request, call a service they are given (``create_app`` decides which), shape the answer. No store, no ``app.state``."""

from .admin import AdminController
from .blobs import BlobsController
from .conflicts import ConflictsController
from .devices import DevicesController
from .enrol import EnrolController
from .health import health
from .me import MeController
from .records import RecordsController
from .reports import ReportsController
from .search import SearchController
from .sync import SyncController

__all__ = [
    "AdminController",
    "BlobsController",
    "ConflictsController",
    "DevicesController",
    "EnrolController",
    "MeController",
    "RecordsController",
    "ReportsController",
    "SearchController",
    "SyncController",
    "health",
]
