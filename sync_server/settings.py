"""Server settings: defaults from PROTOCOL.md, overridable by environment or CLI."""

from __future__ import annotations

import os
from typing import Any, Literal

import msgspec

from schemas import MAX_CHANGES

__all__ = ["Settings"]

MiB = 1024 * 1024


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    #: ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``postgresql://...``
    db_url: str = "sqlite:///patrol-sync.db"
    max_body_bytes: int = 8 * MiB  # after decompression
    max_changes: int = MAX_CHANGES  # per change set
    max_page: int = 1_000  # records per pull page
    max_text_bytes: int = 64 * 1024  # one field value string, UTF-8
    max_blob_bytes: int = 20 * MiB
    #: the blob store's folder (``sync_server/blobs``); empty: beside the SQLite file
    #: (``x.db`` -> ``x.blobs``). Required with PostgreSQL (a volume every worker shares).
    blob_dir: str = ""
    blob_staging_ttl_s: float = 7 * 86400.0  # a resumable upload untouched this long is dropped
    max_clock_skew_ms: int = 10 * 60 * 1000
    default_timezone: str = "Asia/Ho_Chi_Minh"
    # -- backpressure (sync_server/limits.py): past these, 503 or 429 with Retry-After
    max_queued_changes: int = 50_000  # changes waiting for the push writer (queued or being written)
    max_inflight: int = 256  # requests being handled by this process at once
    max_inflight_per_device: int = 64  # of them, from one token (an admin script may run many at once)
    push_timeout_s: float = 30.0  # a push not committed by then answers 503 (a retry gets the stored answer)
    request_timeout_s: float = 60.0  # a request with no answer started by then answers 503
    retry_after_s: int = 1  # the Retry-After of those answers
    # -- logging (sync_server/observability.py)
    log_format: Literal["json", "text"] = "json"  # "json" (one object a line) or "text"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``PATROL_SYNC_<NAME>`` variables, then explicit overrides."""
        environ = dict(os.environ) if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.__struct_fields__:
            raw = environ.get(f"PATROL_SYNC_{name.upper()}")
            if raw is not None:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return msgspec.convert(values, cls, strict=True)

    def to_env(self) -> dict[str, str]:
        """The variables that rebuild these settings in another process (a worker)."""
        return {f"PATROL_SYNC_{name.upper()}": str(getattr(self, name)) for name in self.__struct_fields__}
