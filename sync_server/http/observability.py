"""What an operator sees: structured logs with a request id, and Prometheus metrics.

- **Request ids.** Every HTTP request gets one: the caller's ``X-Request-ID`` when
  it is sane (1-64 of ``[A-Za-z0-9._:-]``), else a fresh one. It is echoed in the
  answer's ``X-Request-ID`` and stamped on every log line written while the request
  is handled (a context variable).
- **Logs** are one JSON object a line (``Settings.log_format = "text"`` for
  ``key=value``), written to standard error. Each request ends with one access line
  (method, path, route, status, milliseconds, device, client address: the proxy's
  ``X-Forwarded-For`` only from ``PATROL_SYNC_TRUSTED_PROXIES``, else the peer's own).
  A start-up failure is one line too, never a traceback. Tokens never appear: the
  ``Authorization`` header is never logged, and query parameters whose name looks
  like a secret are masked (tokens never travel in URLs; a client that puts one
  there still does not get it written down).
- **Metrics** at ``GET /metrics`` in Prometheus' text format. They hold counts by
  route template and status, never an id, a token or a record value; still, an
  operator who serves the port beyond his own network sets
  ``PATROL_SYNC_METRICS_TOKEN``, and then a scrape needs ``Authorization: Bearer
  <that token>`` (anything else is 401), or blocks ``/metrics`` at the proxy. Behind
  ``serve --workers N`` each scrape sees the worker that answers it, unless
  ``PROMETHEUS_MULTIPROC_DIR`` names a directory the workers share (then the
  scrape adds them up; see prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hmac
import json
import logging
import os
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from ..errors import Unauthorized
from ..services.identity import TOKEN_PREFIX
from ..services.writer import GroupStats, PushWriter
from .auth import bearer_token

__all__ = [
    "Metrics",
    "RequestContext",
    "logging_config",
    "metrics_endpoint",
    "request_id",
]

log = logging.getLogger("patrol_sync.access")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("patrol_sync_request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_EXCEPTION_LINE = re.compile(r"^[ |]*((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*: .*)$", re.MULTILINE)
_SECRET_PARAM = re.compile(r"token|auth|key|secret|passw|sig", re.IGNORECASE)
#: a patrol-sync token (``identity.TOKEN_PREFIX`` and 43 characters) wherever it shows up in a URL
_TOKEN_LIKE = re.compile(rf"{TOKEN_PREFIX}[A-Za-z0-9_-]{{8,}}")
#: the fields a log line may carry besides the message (``extra={...}``)
_FIELDS = ("method", "path", "route", "status", "ms", "device", "client", "bytes_in", "changeset_id")
_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

disable_created_metrics()  # type: ignore[no-untyped-call]  # no ``*_created`` series: half the lines, nothing a dashboard uses


def request_id() -> str | None:
    """The id of the request being handled (None outside a request)."""
    return _request_id.get()


# -- logs -------------------------------------------------------------------------


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


class _OneLineStartupFailure(logging.Filter):
    """uvicorn logs a failed start-up with the whole traceback Litestar formats as its
    message; the operator needs its last line (what failed), as one log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg
        if isinstance(message, str) and "Traceback (most recent call last)" in message:
            # the last ``module.Error: what`` line (exception groups indent theirs behind "|")
            found = [m.group(1) for m in _EXCEPTION_LINE.finditer(message) if not m.group(1).startswith(("ExceptionGroup", "BaseExceptionGroup"))]
            last = found[-1] if found else [line for line in message.splitlines() if line.strip()][-1].strip()
            record.msg, record.args = "start-up failed: %s", (last,)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            entry["request_id"] = rid
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=... logger=... msg="..." request_id=... key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        parts = [f"ts={ts}", f"level={record.levelname.lower()}", f"logger={record.name}", f"msg={json.dumps(record.getMessage(), ensure_ascii=False)}"]
        rid = getattr(record, "request_id", None)
        if rid:
            parts.append(f"request_id={rid}")
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                parts.append(f"{name}={json.dumps(value, ensure_ascii=False) if isinstance(value, str) else value}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def logging_config(level: str = "info", fmt: str = "json") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server (uvicorn's ``log_config``):
    everything, uvicorn's own lines included, structured on standard error."""
    formatter = f"{__name__}.JsonFormatter" if fmt == "json" else f"{__name__}.KeyValueFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": f"{__name__}._RequestIdFilter"},
            "one_line": {"()": f"{__name__}._OneLineStartupFailure"},
        },
        "formatters": {"structured": {"()": formatter}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "structured", "filters": ["request_id"]},
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True, "filters": ["one_line"]},
            # replaced by this module's access line, which carries the request id
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
        },
    }


def _safe_url(path: str, query: bytes) -> str:
    """The path and query to log: secret-looking parameters and anything shaped like a
    token masked (tokens never travel in URLs, but a careless client may put one there),
    and at most ``MAX_LOGGED_PATH`` characters: a 60 KB URL is not logged whole."""
    if query:
        pairs = parse_qsl(query[: 4 * MAX_LOGGED_PATH].decode("latin-1"), keep_blank_values=True)
        path += "?" + urlencode([(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*/")
    path = _TOKEN_LIKE.sub(TOKEN_PREFIX + "***", path[: 2 * MAX_LOGGED_PATH])
    return path if len(path) <= MAX_LOGGED_PATH else path[:MAX_LOGGED_PATH] + "…"


#: the longest path and query a log line carries
MAX_LOGGED_PATH = 512


# -- metrics ----------------------------------------------------------------------


class Metrics:
    """The server's Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self, token: str = "") -> None:
        self._token = token.encode()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("patrol_sync_http_requests", "HTTP requests answered, by route template and status", ["method", "route", "status"], registry=r)
        self.latency = Histogram(
            "patrol_sync_http_request_duration_seconds", "Time to answer a request, by route template", ["method", "route"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.in_flight = Gauge("patrol_sync_http_requests_in_flight", "Requests being handled now", registry=r, multiprocess_mode="livesum")
        self.shed = Counter("patrol_sync_http_shed", "Requests refused for load (429/503 with Retry-After), by reason", ["reason"], registry=r)
        self.changesets = Counter("patrol_sync_changesets", "Change sets committed (applied) or answered again (replayed)", ["outcome"], registry=r)
        self.applied = Counter("patrol_sync_changes_applied", "Changes applied by the push writer", registry=r)
        self.rejected = Counter("patrol_sync_changes_rejected", "Changes rejected (invalid, out of scope, unknown collection)", registry=r)
        self.conflicts = Counter("patrol_sync_conflicts", "Conflicts logged", registry=r)
        self.commit = Histogram("patrol_sync_writer_commit_seconds", "Push writer: one group's write transaction", buckets=_LATENCY_BUCKETS, registry=r)
        self.queue = Gauge("patrol_sync_writer_queue_changes", "Changes waiting for the push writer (queued or being written)", registry=r, multiprocess_mode="livesum")

    def watch(self, writer: PushWriter) -> None:
        """Count what the writer commits, and read its queue depth on each scrape."""
        writer.listeners.append(self.on_group)
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            return  # a callback gauge cannot be shared between processes
        self.queue.set_function(lambda: float(writer.queued_changes))

    def on_group(self, stats: GroupStats) -> None:
        if stats.changesets:
            self.changesets.labels("applied").inc(stats.changesets)
        if stats.replayed:
            self.changesets.labels("replayed").inc(stats.replayed)
        self.applied.inc(stats.applied)
        self.rejected.inc(stats.rejected)
        self.conflicts.inc(stats.conflicts)
        self.commit.observe(stats.seconds)

    def allows(self, authorization: str) -> bool:
        """Whether a scrape with this ``Authorization`` header may read the metrics."""
        if not self._token:
            return True
        given = bearer_token(authorization)
        return given is not None and hmac.compare_digest(given.encode(), self._token)

    def render(self) -> bytes:
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            shared = CollectorRegistry()
            MultiProcessCollector(shared)  # type: ignore[no-untyped-call]
            return generate_latest(shared)
        return generate_latest(self.registry)


@get("/metrics", exclude_from_auth=True, include_in_schema=False, sync_to_thread=False)
def metrics_endpoint(metrics: NamedDependency[Metrics], request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text format; no device token, the metrics token if one is set (module docstring)."""
    if not metrics.allows(request.headers.get("authorization", "")):
        raise Unauthorized("the metrics need the metrics token (PATROL_SYNC_METRICS_TOKEN)")
    # the header as given: a ``media_type`` starting with text/ would get a second charset
    return Response(metrics.render(), headers={"content-type": CONTENT_TYPE_LATEST})


# -- the middleware ---------------------------------------------------------------


class RequestContext:
    """Outermost ASGI layer: request id, access log line, request metrics.

    It wraps the whole application (routing included), so unknown paths and
    answers of the load limiter get an id, a line and a count too."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        rid = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        token = _request_id.set(rid)
        started = time.perf_counter()
        status = 500  # unless an answer starts
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - started
            method = scope["method"]
            route = scope.get("path_template") or "unmatched"
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(seconds)
            user = scope.get("user")
            log.info(
                "%s %s %s",
                method,
                route,
                status,
                extra={
                    "method": method,
                    "path": _safe_url(scope["path"], scope.get("query_string", b"")),
                    "route": route,
                    "status": status,
                    "ms": round(seconds * 1000, 2),
                    "device": getattr(user, "device_id", None),
                    "client": (scope.get("client") or (None,))[0],
                },
            )
            _request_id.reset(token)
