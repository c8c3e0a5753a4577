"""``patrol-sync``: serve, administer, demo.

Errors are one plain line on standard error (exit status 1); usage errors exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec

from schemas import Device, NewDevice, Team, User, Ward

from . import identity
from .errors import ProblemError
from .settings import Settings
from .stores import Store, StoreError, store_for

__all__ = ["main"]

T = TypeVar("T")
_DEFAULT_DB = Settings().db_url


class CommandError(Exception):
    """A failure to report as one plain line."""


def _run_with_store(db: str, action: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        try:
            store = store_for(db)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        await store.open()
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (StoreError, ProblemError) as exc:
        raise CommandError(str(exc)) from None


def _print_rows(rows: Sequence[Any]) -> None:
    for row in rows:
        print(msgspec.json.encode(row).decode())


# -- commands -------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from .observability import logging_config

    settings = Settings.from_env(db_url=args.db, blob_dir=args.blobs)
    try:
        probe = store_for(settings.db_url)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    del probe
    os.environ.update(settings.to_env())
    uvicorn.run(
        "sync_server.asgi:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        log_config=logging_config(args.log_level, settings.log_format),
        access_log=False,  # the app writes its own access line, with the request id
        proxy_headers=False,
    )


def cmd_backup(args: argparse.Namespace) -> None:
    from .backup import BackupError, backup

    try:
        info = backup(args.db, args.to, blob_dir=Settings.from_env(db_url=args.db).blob_dir or None)
    except BackupError as exc:
        raise CommandError(str(exc)) from None
    print(f"backed up {info.line()}")


def cmd_restore(args: argparse.Namespace) -> None:
    from .backup import BackupError, restore

    try:
        info = restore(args.source, args.db, force=args.force, blob_dir=Settings.from_env(db_url=args.db).blob_dir or None)
    except BackupError as exc:
        raise CommandError(str(exc)) from None
    print(f"restored {info.line()}; clients holding older cursors get 410 and pull again")


def cmd_bootstrap(args: argparse.Namespace) -> None:
    try:
        token = _run_with_store(args.db, identity.bootstrap)
    except CommandError as exc:
        if "exists" in str(exc):
            raise CommandError("this store has been bootstrapped already; its admin token was shown then") from None
        raise
    print(token)


def cmd_ward_add(args: argparse.Namespace) -> None:
    ward = Ward(id=args.id, name=args.name, timezone=args.timezone)
    _run_with_store(args.db, lambda s: identity.create_entity(s, _valid(ward)))
    _print_rows([ward])


def cmd_team_add(args: argparse.Namespace) -> None:
    team = Team(id=args.id, ward_id=args.ward, name=args.name)
    _run_with_store(args.db, lambda s: identity.create_entity(s, _valid(team)))
    _print_rows([team])


def cmd_user_add(args: argparse.Namespace) -> None:
    user = User(id=args.id, name=args.name, role=args.role, team_ids=args.team or [], ward_ids=args.ward or [])
    _run_with_store(args.db, lambda s: identity.create_entity(s, _valid(user)))
    _print_rows([user])


def cmd_device_add(args: argparse.Namespace) -> None:
    request = _valid(NewDevice(device_id=args.device_id, user_id=args.user))
    issued = _run_with_store(args.db, lambda s: identity.issue_device(s, request))
    print(issued.token)


def cmd_device_revoke(args: argparse.Namespace) -> None:
    _run_with_store(args.db, lambda s: s.revoke_device(args.device_id))
    print(f"revoked {args.device_id}")


def _lister(kind: type[Ward] | type[Team] | type[User] | type[Device]) -> Callable[[argparse.Namespace], None]:
    def run(args: argparse.Namespace) -> None:
        _print_rows(_run_with_store(args.db, lambda s: s.entities(kind)))

    return run


def _valid(entity: T) -> T:
    """Check an entity built from arguments against its type's constraints."""
    try:
        return msgspec.convert(msgspec.to_builtins(entity), type(entity))
    except msgspec.ValidationError as exc:
        raise CommandError(str(exc)) from None


def cmd_demo(args: argparse.Namespace) -> None:
    try:
        from .demo import run_demo
    except ImportError:
        raise CommandError("the demo is not part of this build") from None
    sys.exit(run_demo(seed=args.seed, as_json=args.json))


# -- parser -----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="patrol-sync", description="Offline-first sync server for ward patrols.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--db", default=os.environ.get("PATROL_SYNC_DB_URL", _DEFAULT_DB), help="sqlite:///file.db (default) or postgresql://...")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--blobs", default=None, metavar="DIR",
        help="folder for attachments (default: beside the SQLite file, x.db -> x.blobs; required with PostgreSQL: a volume every worker shares)",
    )
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(run=cmd_serve)

    demo = commands.add_parser("demo", help="run the demo scenario on a temporary embedded store")
    demo.add_argument("--seed", type=int, default=2023)
    demo.add_argument("--json", action="store_true", help="print the figures as JSON on standard output (the story on standard error)")
    demo.set_defaults(run=cmd_demo)

    admin = commands.add_parser("admin", help="administer wards, teams, users and devices").add_subparsers(
        dest="what", required=True, metavar="WHAT"
    )

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", default=os.environ.get("PATROL_SYNC_DB_URL", _DEFAULT_DB), help="the server's database URL")
        return p

    with_db(admin.add_parser("bootstrap", help="create the first admin and print its token")).set_defaults(run=cmd_bootstrap)

    p = with_db(admin.add_parser("backup", help="copy the SQLite store to a file while the server runs (online backup)"))
    p.add_argument("--to", required=True, metavar="PATH", help="the backup file (replaced whole, never half-written)")
    p.set_defaults(run=cmd_backup)
    p = with_db(admin.add_parser("restore", help="replace the SQLite store with a backup, under a new epoch"))
    p.add_argument("--from", dest="source", required=True, metavar="PATH", help="a file made by `admin backup`")
    p.add_argument("--force", action="store_true", help="overwrite even if a process has the store open (stop the server first!)")
    p.set_defaults(run=cmd_restore)

    ward = admin.add_parser("ward", help="wards").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = with_db(ward.add_parser("add", help="add a ward"))
    p.add_argument("id")
    p.add_argument("name")
    p.add_argument("--timezone", default="Asia/Ho_Chi_Minh")
    p.set_defaults(run=cmd_ward_add)
    with_db(ward.add_parser("list", help="list wards")).set_defaults(run=_lister(Ward))

    team = admin.add_parser("team", help="teams").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = with_db(team.add_parser("add", help="add a team"))
    p.add_argument("id")
    p.add_argument("name")
    p.add_argument("--ward", required=True)
    p.set_defaults(run=cmd_team_add)
    with_db(team.add_parser("list", help="list teams")).set_defaults(run=_lister(Team))

    user = admin.add_parser("user", help="users").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = with_db(user.add_parser("add", help="add a user"))
    p.add_argument("id")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=["officer", "supervisor", "admin"])
    p.add_argument("--team", action="append", help="a team of the user (repeat for several)")
    p.add_argument("--ward", action="append", help="a ward the user oversees without a team (repeat)")
    p.set_defaults(run=cmd_user_add)
    with_db(user.add_parser("list", help="list users")).set_defaults(run=_lister(User))

    device = admin.add_parser("device", help="devices and their tokens").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = with_db(device.add_parser("add", help="register a device and print its token"))
    p.add_argument("device_id")
    p.add_argument("--user", required=True)
    p.set_defaults(run=cmd_device_add)
    p = with_db(device.add_parser("revoke", help="revoke a device's token"))
    p.add_argument("device_id")
    p.set_defaults(run=cmd_device_revoke)
    with_db(device.add_parser("list", help="list devices (never tokens)")).set_defaults(run=_lister(Device))
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except CommandError as exc:
        print(f"patrol-sync: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
