"""Examples and CSV answers for the OpenAPI document (``sync_server/http/openapi.py``).

The examples are PROTOCOL.md's, made whole; ``tests/test_openapi.py`` decodes each
with its wire type, so they cannot drift from the vocabulary.
"""

from __future__ import annotations

from typing import Any

from .. import errors

__all__ = ["CSV", "PROBLEMS", "PULL_ANSWER", "PUSH_ANSWER", "PUSH_REQUEST", "add"]

_TS = "1686200000123-0000-lamson-h03"
_BASE = "1686100000000-0002-lamson-h01"
_PHOTO = "sha256:" + "ab12" * 16

PUSH_REQUEST: dict[str, Any] = {
    "device_id": "lamson-h03",
    "changeset_id": "0192f7a0-7c1e-7b3a-9a55-0e5b3e1c2d4f",
    "changes": [
        {
            "collection": "violations",
            "id": "v-0192f7",
            "fields": {
                "status": {"value": "fined", "ts": _TS, "base": _BASE},
                "fine_vnd": {"value": 1500000, "ts": _TS, "base": None},
                "photos": {"add": [_PHOTO], "remove": [], "ts": _TS},
            },
        },
        {"collection": "checks", "id": "c-0192f8", "delete": {"ts": "1686200000999-0000-lamson-h03", "base": _BASE}},
    ],
}

_VIOLATION = {
    "collection": "violations",
    "id": "v-0192f7",
    "ward_id": "lam-son",
    "seq": 9123,
    "deleted": False,
    "fields": {
        "ward_id": "lam-son",
        "check_id": "c-0192f1",
        "premises_id": "p-0192e0",
        "category": "fire_safety",
        "status": "resolved",
        "fine_vnd": 1500000,
        "photos": [_PHOTO],
        "created_by": "u-ngoc",
        "created_at": "2023-06-08T09:15:00+07:00",
    },
    "stamps": {
        "ward_id": _BASE,
        "check_id": _BASE,
        "premises_id": _BASE,
        "category": _BASE,
        "status": "1686200000456-0000-lamson-h01",
        "fine_vnd": _TS,
        "photos": _TS,
        "created_by": _BASE,
        "created_at": _BASE,
    },
}

PUSH_ANSWER: dict[str, Any] = {
    "changeset_id": "0192f7a0-7c1e-7b3a-9a55-0e5b3e1c2d4f",
    "cursor": "AAAAAAAAI6M",
    "results": [
        {"collection": "violations", "id": "v-0192f7", "status": "applied", "seq": 9123, "record": _VIOLATION},
        {"collection": "checks", "id": "c-0192f8", "status": "rejected", "errors": [{"code": "forbidden", "detail": "ward phu-son is not in your scope", "field": "ward_id"}]},
    ],
    "conflicts": [
        {
            "id": "c-77",
            "collection": "violations",
            "record_id": "v-0192f7",
            "field": "status",
            "kind": "rank",
            "winner": "server",
            "server": {"value": "resolved", "ts": "1686200000456-0000-lamson-h01"},
            "client": {"value": "fined", "ts": _TS},
            "ward_id": "lam-son",
            "device_id": "lamson-h03",
            "user_id": "u-hoa",
            "changeset_id": "0192f7a0-7c1e-7b3a-9a55-0e5b3e1c2d4f",
            "created_at": "2023-06-08T02:20:01.123Z",
            "status": "open",
        }
    ],
    "warnings": [],
}

PULL_ANSWER: dict[str, Any] = {"records": [_VIOLATION], "cursor": "AAAAAAAAI6M", "more": False}

_DETAILS = {
    400: "unknown collections: reports",
    401: "a valid bearer token is required",
    403: "u-ngoc may not read ward phu-son",
    404: "no device lamson-h09",
    409: "a ward with id lam-son exists already",
    410: "this cursor is from before the store was restored: pull again from no cursor",
    413: "a change set holds at most 5000 changes",
    415: "send application/json or application/msgpack",
    416: "bytes=9000- is past the end of the blob",
    422: "limit must be between 1 and 1000",
    429: "too many requests at once: retry after the time in Retry-After",
    503: "the store is not reachable",
}


def _problem(status: int) -> dict[str, Any]:
    every: list[type[errors.ProblemError]] = [errors.ProblemError, *_subclasses(errors.ProblemError)]
    kind = next((k for k in every if k.status == status), errors.ProblemError)
    detail = _DETAILS.get(status, "the server failed to handle this request; it has been logged")
    return {"type": errors.problem_type(kind.slug), "title": kind.title, "status": kind.status, "detail": detail}


def _subclasses(kind: type[errors.ProblemError]) -> list[type[errors.ProblemError]]:
    return [k for sub in kind.__subclasses__() for k in (sub, *_subclasses(sub))]


#: A problem document for each status the server answers with one (500 for ``default``).
PROBLEMS: dict[int, dict[str, Any]] = {status: _problem(status) for status in (*_DETAILS, 500)}

#: (path, method) -> what a CSV answer holds, and an example
CSV: dict[tuple[str, str], tuple[str, str]] = {
    ("/v1/reports/checks", "get"): (
        "With `Accept: text/csv`: the same rows as CSV (UTF-8, CRLF), headed key,key_name,checks,premises,violations.",
        "key,key_name,checks,premises,violations\r\nu-ngoc,Lê Văn Ngọc,12,9,3\r\nu-hoa,Nguyễn Thị Hoa,7,7,0\r\n",
    ),
}

_JSON_EXAMPLES: dict[tuple[str, str], tuple[dict[str, Any] | None, dict[str, Any]]] = {
    ("/v1/sync/push", "post"): (PUSH_REQUEST, PUSH_ANSWER),
    ("/v1/sync/pull", "get"): (None, PULL_ANSWER),
}


def add(path: str, method: str, operation: dict[str, Any]) -> None:
    """Put the examples and the CSV answer of one operation in place."""
    pair = _JSON_EXAMPLES.get((path, method))
    if pair is not None:
        request, answer = pair
        if request is not None:
            operation["requestBody"]["content"]["application/json"]["example"] = request
        operation["responses"]["200"]["content"]["application/json"]["example"] = answer
    csv = CSV.get((path, method))
    if csv is not None:
        description, example = csv
        ok = operation["responses"]["200"]
        ok["description"] = f"{ok.get('description', 'OK')}. {description}"
        ok.setdefault("content", {})["text/csv"] = {"schema": {"type": "string"}, "example": example}
    for status, response in operation["responses"].items():
        content = (response.get("content") or {}).get("application/problem+json")
        if content is not None:
            code = 500 if status == "default" else int(status)
            response["content"] = {**response["content"], "application/problem+json": {**content, "example": PROBLEMS.get(code, PROBLEMS[500])}}
