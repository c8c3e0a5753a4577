"""A slow, lossy link on loopback: an asyncio TCP proxy (netem is not available here).

Each direction has its own bandwidth: a piece of ``n`` bytes occupies the link for
``n / rate`` seconds (so the proxy reads no faster than the link drains, as TCP
would), then arrives ``rtt / 2`` later. A connection may be cut at a random byte:
``cut_mean_bytes`` draws, for each connection, the number of bytes (both ways) after
which both sockets are aborted, from an exponential distribution, so that a long
exchange is more likely to be cut than a short one, as on a real 2G link.

Used by the tests (``tests/test_link.py``) and by ``bench/field_link.py``::

    async with Link(port, up_kbit=64, down_kbit=64, rtt_ms=400) as link:
        client = AsyncPatrolClient(link.url, ...)
        ...
        print(link.up_bytes, link.down_bytes, link.cuts)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from types import TracebackType

__all__ = ["Link"]

_PIECE = 1400  # about one TCP segment


@dataclasses.dataclass
class _Conn:
    cut_at: float
    passed: int = 0
    cut: bool = False
    writers: list[asyncio.StreamWriter] = dataclasses.field(default_factory=list)


class Link:
    def __init__(
        self,
        target_port: int,
        *,
        up_kbit: float = 64,
        down_kbit: float = 64,
        rtt_ms: float = 400,
        cut_mean_bytes: float | None = None,
        seed: int = 0,
        target_host: str = "127.0.0.1",
    ) -> None:
        self.target = (target_host, target_port)
        self.up_rate = up_kbit * 1000 / 8  # bytes a second
        self.down_rate = down_kbit * 1000 / 8
        self.delay = rtt_ms / 2000
        self.cut_mean_bytes = cut_mean_bytes
        self.rng = random.Random(seed)
        self.up_bytes = 0
        self.down_bytes = 0
        self.connections = 0
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._conns: list[_Conn] = []
        self.url = ""

    async def __aenter__(self) -> Link:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._server is not None
        self._server.close()
        for conn in self._conns:  # end every connection; the pumps then finish on their own
            conn.cut = True
            for w in conn.writers:
                w.transport.abort()
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5)
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    def counters(self) -> tuple[int, int]:
        return self.up_bytes, self.down_bytes

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                server_r, server_w = await asyncio.open_connection(*self.target)
            except OSError:
                client_w.transport.abort()
                return
            self.connections += 1
            cut_at = self.rng.expovariate(1 / self.cut_mean_bytes) if self.cut_mean_bytes else float("inf")
            conn = _Conn(cut_at, writers=[client_w, server_w])
            self._conns.append(conn)
            await asyncio.gather(self._pump(client_r, server_w, conn, up=True), self._pump(server_r, client_w, conn, up=False))
        finally:
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: _Conn, *, up: bool) -> None:
        """One direction: serialise at the link's rate, deliver after the one-way delay."""
        loop = asyncio.get_running_loop()
        rate = self.up_rate if up else self.down_rate
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                at, data = item
                await asyncio.sleep(max(0.0, at - loop.time()))
                if conn.cut:
                    return
                writer.write(data)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()

        delivering = asyncio.create_task(deliver())
        free_at = loop.time()
        try:
            while not conn.cut:
                try:
                    data = await reader.read(_PIECE)
                except ConnectionError:
                    break
                if not data:
                    break
                if conn.passed + len(data) > conn.cut_at:  # the link drops here
                    keep = max(0, int(conn.cut_at) - conn.passed)
                    if keep:
                        free_at = max(free_at, loop.time()) + keep / rate
                        await queue.put((free_at + self.delay, data[:keep]))
                        self._count(up, keep)
                    await asyncio.sleep(max(0.0, free_at + self.delay - loop.time()) + 0.01)
                    self._cut(conn)
                    break
                conn.passed += len(data)
                self._count(up, len(data))
                free_at = max(free_at, loop.time()) + len(data) / rate
                await asyncio.sleep(max(0.0, free_at - loop.time()))
                await queue.put((free_at + self.delay, data))
        finally:
            await queue.put(None)
            with contextlib.suppress(asyncio.CancelledError):
                await delivering
            if conn.cut:
                writer.transport.abort()

    def _count(self, up: bool, n: int) -> None:
        if up:
            self.up_bytes += n
        else:
            self.down_bytes += n

    def _cut(self, conn: _Conn) -> None:
        if conn.cut:
            return
        conn.cut = True
        self.cuts += 1
        for w in conn.writers:
            w.transport.abort()
