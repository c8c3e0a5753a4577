"""PouchDB-server 4.2 beside our server, for push figures measured in the same run.

``PouchServer.start()`` installs ``pouchdb-server@4.2.0`` from the npm registry into a
scratch folder (kept between runs: ``$PATROL_POUCH_DIR``, default
``/tmp/patrol-bench-pouchdb``) and runs it on loopback with its default LevelDB
store (``leveldown``: npm fetches its prebuilt binary or builds it with node-gyp),
writing to a temporary folder.  If npm or the start fails, a line says so and the
bench goes on without PouchDB.  Each run pushes into a fresh database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import msgspec
from _workloads import pouch_doc

__all__ = ["PouchServer", "pouch_push"]

VERSION = "4.2.0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PouchServer:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, data: str) -> None:
        self.proc, self.url, self.data = proc, url, data
        self.runs = 0

    @classmethod
    def start(cls) -> PouchServer | None:
        folder = Path(os.environ.get("PATROL_POUCH_DIR", "/tmp/patrol-bench-pouchdb"))
        binary = folder / "node_modules" / ".bin" / "pouchdb-server"
        if not binary.exists():
            folder.mkdir(parents=True, exist_ok=True)
            print(f"installing pouchdb-server@{VERSION} from npm into {folder} ...", flush=True)
            done = subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder), f"pouchdb-server@{VERSION}"],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0 or not binary.exists():
                print(f"PouchDB skipped: npm install failed ({(done.stderr or done.stdout).strip().splitlines()[-1:]})", flush=True)
                return None
        data = tempfile.mkdtemp(prefix="patrol-bench-pouch-")
        port = _free_port()
        proc = subprocess.Popen(
            [str(binary), "--host", "127.0.0.1", "--port", str(port), "--dir", data, "--no-stdout-logs"],
            cwd=data,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/").status_code == 200:
                    return cls(proc, url, data)
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        proc.terminate()
        print("PouchDB skipped: pouchdb-server did not start", flush=True)
        return None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.data, ignore_errors=True)


def _bulk_bodies(work: dict[str, list[bytes]]) -> dict[str, list[bytes]]:
    """Our change sets as ``_bulk_docs`` bodies of the same records."""
    out: dict[str, list[bytes]] = {}
    for device, bodies in work.items():
        out[device] = [msgspec.json.encode({"docs": [pouch_doc(c) for c in msgspec.json.decode(b)["changes"]]}) for b in bodies]
    return out


def pouch_push(server: PouchServer, work: dict[str, list[bytes]], at_once: int) -> float:
    """Seconds PouchDB-server takes for the same change sets, ``at_once`` devices at a time."""
    server.runs += 1
    db = f"bench{server.runs}"
    httpx.put(f"{server.url}/{db}", timeout=60).raise_for_status()
    bulk = _bulk_bodies(work)

    async def push() -> float:
        queue: asyncio.Queue[str] = asyncio.Queue()
        for device in bulk:
            queue.put_nowait(device)

        async def worker() -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
                while not queue.empty():
                    device = queue.get_nowait()
                    for body in bulk[device]:
                        response = await http.post(f"/{db}/_bulk_docs", content=body, headers={"Content-Type": "application/json"})
                        response.raise_for_status()
                        if any("error" in r for r in response.json()):
                            raise RuntimeError(f"PouchDB refused a document: {response.text[:200]}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(at_once)))
        return time.perf_counter() - start

    seconds = asyncio.run(push())
    httpx.delete(f"{server.url}/{db}", timeout=120)
    return seconds
