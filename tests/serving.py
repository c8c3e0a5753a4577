"""The real server as a process of its own, which a test may kill.

``ServerProcess`` runs ``python -m sync_server serve`` on a loopback port with its
log (JSON lines) in a file; ``kill()`` is SIGKILL, ``start()`` brings it back on the
same store and port. Used by the reliability tests, the live console's and the
workers' (``args``: ``--workers``, ``--blobs``, ...).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sync_server.loopback import free_port

ROOT = Path(__file__).resolve().parents[1]



def cli(*args: str) -> str:
    """Run ``patrol-sync`` and return its standard output (fails the test on error)."""
    done = subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class ServerProcess:
    def __init__(
        self, db_url: str, log_path: Path, env: dict[str, str] | None = None, *, args: tuple[str, ...] = (), log_level: str = "info"
    ) -> None:
        self.db_url = db_url
        self.log_path = log_path
        self.args = args
        self.log_level = log_level
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def spawn(self) -> None:
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sync_server", "serve", "--db", self.db_url, "--port", str(self.port), "--log-level", self.log_level, *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=self.env,
            )
        finally:
            log.close()
        self.starts += 1

    async def start(self, timeout: float = 60) -> None:
        """Spawn the server and wait until ``/healthz`` answers."""
        self.spawn()
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                try:
                    if (await http.get(self.url + "/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert self.proc is not None and self.proc.poll() is None, self.log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "the server did not start"
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed but what was committed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")
