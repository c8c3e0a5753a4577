"""Server settings: defaults from PROTOCOL.md, overridable by environment or CLI."""

from __future__ import annotations

import os
import typing
from typing import Any, Literal

import msgspec

from schemas import MAX_CHANGES

__all__ = ["Settings", "SettingsError"]

MiB = 1024 * 1024


class SettingsError(ValueError):
    """A setting that cannot be read; the message names the variable and what it expects."""


def _expected(kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return "one of " + ", ".join(str(v) for v in typing.get_args(kind))
    return {int: "a whole number", float: "a number", str: "text"}.get(kind, str(kind))


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    #: ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``postgresql://...``
    db_url: str = "sqlite:///patrol-sync.db"
    max_body_bytes: int = 8 * MiB  # after decompression
    max_changes: int = MAX_CHANGES  # per change set
    max_page: int = 1_000  # records per pull page
    max_page_bytes: int = 4 * MiB  # encoded records per pull page, before compression (never fewer than one)
    max_wait_s: float = 55.0  # the longest a long-poll pull (wait=) waits; below request_timeout_s
    max_text_bytes: int = 64 * 1024  # one field value string, UTF-8
    max_blob_bytes: int = 20 * MiB
    #: the blob store's folder (``sync_server/blobs``); empty: beside the SQLite file
    #: (``x.db`` -> ``x.blobs``). Required with PostgreSQL (a volume every worker shares).
    blob_dir: str = ""
    blob_staging_ttl_s: float = 86400.0  # a resumable upload is dropped this long after it began, however topped up
    max_clock_skew_ms: int = 10 * 60 * 1000
    #: SQLite only: where pushes are written. ``process``: a child process of the server's
    #: own, fed while the server merges the next group (``stores/sqlite/_process.py``);
    #: ``thread``: a thread of the server's process, sharing its GIL (slower: issue 16)
    sqlite_writer: Literal["process", "thread"] = "process"
    default_timezone: str = "Asia/Ho_Chi_Minh"
    # -- backpressure (sync_server/http/limits.py): past these, 503 or 429 with Retry-After
    max_queued_changes: int = 50_000  # changes waiting for the push writer (queued or being written)
    max_inflight: int = 256  # requests being handled by this process at once
    max_inflight_per_device: int = 64  # of them, from one token (an admin script may run many at once)
    push_timeout_s: float = 30.0  # a push not committed by then answers 503 (a retry gets the stored answer)
    request_timeout_s: float = 60.0  # a request with no answer started by then answers 503
    retry_after_s: int = 1  # the Retry-After of those answers
    # -- logging (sync_server/http/observability.py)
    log_format: Literal["json", "text"] = "json"  # "json" (one object a line) or "text"
    # -- deployment (docs/DEPLOY.md)
    #: origins whose browser pages may call the API, comma-separated (``https://a.example,https://b.example``); empty: none
    cors_origins: str = ""
    #: when set, ``/metrics`` answers only ``Authorization: Bearer <this>`` (else 401)
    metrics_token: str = ""
    #: addresses (or networks, or ``*``) of reverse proxies whose ``X-Forwarded-For``/``-Proto``
    #: are believed, comma-separated; empty: the peer's own address is the client's
    trusted_proxies: str = ""
    # -- enrolment codes (sync_server/services/enrolment.py)
    #: the server's address as handhelds reach it (``https://patrol.example``), for enrolment
    #: URLs; empty: the address each admin request came to
    public_url: str = ""
    enrolment_ttl_s: float = 600.0  # a one-time code is valid this long (PROTOCOL.md section 7: 10 minutes)
    enrol_max_failures: int = 10  # failed exchanges from one client address within the window; then 429
    enrol_failure_window_s: float = 600.0
    # -- hardening (PROTOCOL.md sections 1-3, 6b): what one hostile device may not do
    max_record_bytes: int = 256 * 1024  # a whole record, encoded as pulled; a change past it: too_large
    max_set_elements: int = 2_000  # elements of one set field; a change past it: too_large
    #: a stamp earlier than its device's registration less ``max_clock_skew_ms`` is applied at
    #: the server's clock (clock_skew). Off only to replay old data sets (the tests' 2023 stamps)
    stamps_after_registration: bool = True
    device_rate_per_s: float = 100.0  # requests a second one device may make, on average...
    device_burst: int = 1_000  # ...and at once after a quiet spell (a token bucket); past it, 429
    body_timeout_s: float = 30.0  # a request body (but a blob's) not all arrived by then: 408
    #: a blob upload is slow on 2G, not cut by time: it must bring this many bytes every
    #: ``body_timeout_s`` (8 KiB in 30 s is a link at 2.2 kbit/s), else 408
    blob_min_bytes_per_window: int = 8 * 1024
    blob_quota_bytes: int = 200 * MiB  # blobs no record names, per uploader; past it, 413
    blob_unnamed_ttl_s: float = 7 * 86400.0  # a blob no record names is dropped this long after its upload

    def origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def proxies(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``PATROL_SYNC_<NAME>`` variables, then explicit overrides."""
        environ = dict(os.environ) if environ is None else environ
        values: dict[str, Any] = {}
        for field in msgspec.structs.fields(cls):
            variable = f"PATROL_SYNC_{field.name.upper()}"
            raw = environ.get(variable)
            if raw is None:
                continue
            try:  # one variable at a time, so that the error names it
                values[field.name] = msgspec.convert(raw, field.type, strict=False)
            except msgspec.ValidationError:
                raise SettingsError(f"{variable}={raw!r}: expected {_expected(field.type)}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return msgspec.convert(values, cls)
        except msgspec.ValidationError as exc:
            raise SettingsError(str(exc)) from None

    def to_env(self) -> dict[str, str]:
        """The variables that rebuild these settings in another process (a worker)."""
        return {f"PATROL_SYNC_{name.upper()}": str(getattr(self, name)) for name in self.__struct_fields__}
