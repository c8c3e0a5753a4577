"""Answer compression: brotli at quality 5, except a large push answer, at quality 4.

Every answer over 1 KiB is compressed when the client offers an encoding (PROTOCOL.md 1).
Quality 5 is right for what a handheld fetches on 2G: minimal push answers (a few KiB)
and pull pages (bytes matter most there). A *whole* push answer (the records sent back,
~128 KiB for 100 realistic records, asked by clients that do not ask ``Prefer:
return=minimal``) cost ~1.2 ms of brotli at quality 5 on the event loop, about half of the
loop's HTTP share of a push (``bench/README.md``, issue 16); quality 4 halves that for
~7 % more bytes. So a push answer above :data:`LARGE_PUSH_ANSWER` bytes is compressed at
:data:`LARGE_QUALITY`; smaller ones, and every other path, are byte for byte as before.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any, ClassVar

import brotli  # type: ignore[import-untyped]  # (no stubs; Litestar's facade imports it the same way)
from litestar.config.compression import CompressionConfig
from litestar.enums import CompressionEncoding
from litestar.middleware.compression import CompressionMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ["LARGE_PUSH_ANSWER", "LARGE_QUALITY", "Compression"]

#: a push answer larger than this (uncompressed bytes) is compressed at LARGE_QUALITY
LARGE_PUSH_ANSWER = 64 * 1024
LARGE_QUALITY = 4
PUSH_PATH = "/v1/sync/push"
_EXCLUDE = ["^/v1/blobs/sha256:"]  # photos do not shrink, and ranges must stay byte ranges


class _SizedBrotli:
    """Litestar's brotli facade (the same calls, so the same bytes), with the quality chosen
    by the size of the first chunk: a non-streamed answer is written in one chunk."""

    __slots__ = ("buffer", "compression_encoding", "compressor", "quality")

    encoding: ClassVar[str] = CompressionEncoding.BROTLI

    def __init__(self, buffer: BytesIO, compression_encoding: CompressionEncoding | str, config: CompressionConfig) -> None:
        self.buffer = buffer
        self.compression_encoding = compression_encoding
        self.quality = config.brotli_quality
        self.compressor: Any = None  # brotli.Compressor, made at the first write

    def _compressor(self, size: int) -> Any:
        if self.compressor is None:
            quality = LARGE_QUALITY if size > LARGE_PUSH_ANSWER else self.quality
            self.compressor = brotli.Compressor(quality=quality, mode=brotli.MODE_TEXT, lgwin=22, lgblock=0)
        return self.compressor

    def write(self, body: bytes) -> None:
        compressor = self._compressor(len(body))
        self.buffer.write(compressor.process(body))
        self.buffer.write(compressor.flush())

    def close(self) -> None:
        self.buffer.write(self._compressor(0).finish())


def _config(facade: type[_SizedBrotli] | None) -> CompressionConfig:
    """Brotli quality 5, else gzip level 6, over 1 KiB; ``facade`` picks brotli's quality by size."""
    sized: dict[str, Any] = {} if facade is None else {"backend": "brotli-sized", "compression_facade": facade}
    return CompressionConfig(
        **{"backend": "brotli", **sized},
        minimum_size=1025,
        brotli_quality=5,
        gzip_compress_level=6,
        gzip_fallback=True,
        exclude=_EXCLUDE,
    )


class Compression:
    """Brotli, else gzip, for every answer over 1 KiB but blob bytes; push answers through
    :class:`_SizedBrotli`."""

    def __init__(self, app: ASGIApp) -> None:
        self._every = CompressionMiddleware(app, _config(None))
        self._push = CompressionMiddleware(app, _config(_SizedBrotli))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path") == PUSH_PATH:
            await self._push(scope, receive, send)
        else:
            await self._every(scope, receive, send)
