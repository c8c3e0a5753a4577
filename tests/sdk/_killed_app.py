"""An app that syncs and freezes forever once the server has applied its third change
set, before reading the answer: the test kills it there (``kill -9``) and checks that
the next start of the app loses and duplicates nothing.

    python -m tests.sdk._killed_app URL TOKEN DEVICE USER PATH
"""

from __future__ import annotations

import asyncio
import sys

import httpx

from client_sdk import AsyncPatrolClient, SyncProgress


class FreezeOnThird(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.pushes = 0
        #: the second answer is settled (the SDK settles it while the third is on the
        #: wire): the kill must come after it, or what the test expects is a race
        self.second_settled = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path == "/v1/sync/push":
            self.pushes += 1
            if self.pushes == 3:
                await response.aread()  # the server has applied it and answered
                await self.second_settled.wait()
                print("applied-not-settled", flush=True)
                await asyncio.sleep(3600)  # killed here
        return response


async def main(url: str, token: str, device: str, user: str, path: str) -> None:
    transport = FreezeOnThird()

    def progress(p: SyncProgress) -> None:
        print(f"pushed {p.pushed}", flush=True)
        if p.pushed >= 100:
            transport.second_settled.set()

    async with httpx.AsyncClient(transport=transport) as http:
        async with AsyncPatrolClient(url, token=token, device_id=device, user_id=user, path=path, http=http, max_changes=50) as client:
            await client.sync(progress=progress)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
