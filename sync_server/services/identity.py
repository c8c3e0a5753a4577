"""Tokens and the administration of wards, teams, users and devices.

Shared by the admin API and the ``patrol-sync admin`` command.  A token is 256
random bits, shown once; the store keeps only its SHA-256 (a fast hash is right
for random tokens: there is no dictionary to guess from).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import zoneinfo
from collections.abc import Iterator, Sequence
from typing import TypeVar, cast

from schemas import SERVER_NODE, Device, DeviceToken, NewDevice, Team, TeamUpdate, User, UserUpdate, Ward, WardUpdate

from .. import errors
from ..errors import Unprocessable
from ..principal import Principal
from ..stores import IdentityStore, Store
from ..stores import errors as store_errors

__all__ = [
    "BOOTSTRAP_DEVICE",
    "BOOTSTRAP_USER",
    "Administration",
    "bootstrap",
    "create_entity",
    "hash_token",
    "issue_device",
    "new_token",
    "reissue_token",
    "rename_ward",
    "update_team",
    "update_user",
]

E = TypeVar("E", Ward, Team, User, Device)

TOKEN_PREFIX = "pst_"
BOOTSTRAP_USER = "admin"
BOOTSTRAP_DEVICE = "admin-cli"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def create_entity(store: IdentityStore, entity: Ward | Team | User) -> None:
    """Create a ward, team or user. Raises the store's AlreadyExists or UnknownReference."""
    if isinstance(entity, Ward):
        try:
            zoneinfo.ZoneInfo(entity.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise Unprocessable(f"unknown time zone {entity.timezone!r} (use an IANA name like Asia/Ho_Chi_Minh)") from None
    await store.create(entity)


async def issue_device(store: IdentityStore, request: NewDevice) -> DeviceToken:
    """Register a device for a user and issue its token (shown only here)."""
    if request.device_id == SERVER_NODE:
        raise Unprocessable(f"device id {SERVER_NODE!r} is reserved for the server's own stamps")
    token = new_token()
    issued = DeviceToken(device_id=request.device_id, user_id=request.user_id, token=token)
    await store.create(issued, token_hash=hash_token(token))
    return issued


async def reissue_token(store: IdentityStore, device_id: str) -> DeviceToken:
    """A new token for a device: the old one stops at once. Works for a revoked device too
    (it is revoked no more): a lost handheld that turns up again keeps its device id, so the
    edits still in its outbox sync as its own once it holds the new token."""
    token = new_token()
    user_id = await store.reissue_token(device_id, hash_token(token))
    return DeviceToken(device_id=device_id, user_id=user_id, token=token)


async def update_user(store: IdentityStore, user_id: str, changes: UserUpdate) -> User:
    """Change a user's name, role, teams, wards or state. Scope is read on every request,
    so his devices' next requests see it; a disabled user's devices get 401 until he is
    enabled again. The last enabled admin can be neither disabled nor demoted (Refused)."""
    return await store.update_user(user_id, changes)


async def rename_ward(store: IdentityStore, ward_id: str, changes: WardUpdate) -> Ward:
    return await store.rename_ward(ward_id, changes.name)


async def update_team(store: IdentityStore, team_id: str, changes: TeamUpdate) -> Team:
    """Rename a team, or move it to another ward while no check or patrol names it: its
    records' ``ward_id`` is write-once, so a team with records stays in their ward."""
    return await store.update_team(team_id, changes)


async def bootstrap(store: IdentityStore) -> str:
    """Create the first admin (user ``admin``, device ``admin-cli``); returns its token.

    Works once per store: a second call raises AlreadyExists."""
    await store.create(User(id=BOOTSTRAP_USER, name="Administrator", role="admin"))
    issued = await issue_device(store, NewDevice(device_id=BOOTSTRAP_DEVICE, user_id=BOOTSTRAP_USER))
    return issued.token


class Administration:
    """The admin API's calls and the token look-up, over the server's store.

    The HTTP layer holds this, never the store: the functions above take the store for
    the ``patrol-sync admin`` command, which opens its own."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def principal(self, token: str) -> Principal | None:
        """Who holds this token (None: unknown, expired, revoked or disabled). One lookup
        by hash, so an unknown and a revoked token cost the same."""
        return await self._store.principal(hash_token(token))

    async def reachable(self) -> bool:
        """Whether the store answers (``/healthz``)."""
        return await self._store.ping()

    async def create(self, entity: Ward | Team | User) -> None:
        await create_entity(self._store, entity)

    async def issue_device(self, request: NewDevice) -> DeviceToken:
        return await issue_device(self._store, request)

    async def revoke_device(self, device_id: str) -> None:
        """Its token is refused from the next request on."""
        await self._store.revoke_device(device_id)

    async def reissue_token(self, device_id: str) -> DeviceToken:
        """Raises the domain's NotFound (no such device)."""
        with _as_domain_errors():
            return await reissue_token(self._store, device_id)

    async def update_user(self, user_id: str, changes: UserUpdate) -> User:
        """Raises the domain's NotFound (no such user) or Refused (the last enabled admin)."""
        with _as_domain_errors():
            return await update_user(self._store, user_id, changes)

    async def rename_ward(self, ward_id: str, changes: WardUpdate) -> Ward:
        return await rename_ward(self._store, ward_id, changes)

    async def update_team(self, team_id: str, changes: TeamUpdate) -> Team:
        return await update_team(self._store, team_id, changes)

    async def every(self, kind: type[E]) -> Sequence[E]:
        """Every ward, team, user or device (never a token)."""
        return cast(Sequence[E], await self._store.entities(kind))

    async def zone_of_device(self, device_id: str) -> zoneinfo.ZoneInfo | None:
        """The time zone of the ward a device works in (its user's first ward, or his first
        team's), so an expiry reads as the clock on the ward's wall; None: the default zone."""
        devices = await self.every(Device)
        users = {u.id: u for u in await self.every(User)}
        user = next((users.get(d.user_id) for d in devices if d.device_id == device_id), None)
        if user is None:
            return None
        ward_id = user.ward_ids[0] if user.ward_ids else None
        if ward_id is None and user.team_ids:
            ward_id = next((t.ward_id for t in await self.every(Team) if t.id == user.team_ids[0]), None)
        zones = {w.id: w.timezone for w in await self.every(Ward)}
        return zoneinfo.ZoneInfo(zones[ward_id]) if ward_id in zones else None


@contextlib.contextmanager
def _as_domain_errors() -> Iterator[None]:
    """The store's NotFound and Refused as the domain's, with the store's words: the API
    answers them as it did (``http/problems.py`` maps them the same way) and the console,
    which may not import a store, can catch them."""
    try:
        yield
    except store_errors.NotFound as exc:
        raise errors.NotFound(str(exc)) from None
    except store_errors.Refused as exc:
        raise errors.Refused(str(exc)) from None
