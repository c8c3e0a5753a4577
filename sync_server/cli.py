"""``patrol-sync``: serve, administer, migrate, demo.

Errors are one plain line on standard error (exit status 1); usage errors exit 2.
A typo never creates a store: ``serve``, ``admin bootstrap`` and ``admin restore``
create a SQLite file only in a folder that exists; every other command refuses a
store that does not exist.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import typing
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec

from schemas import Device, EnrolmentRequest, NewDevice, Team, TeamUpdate, User, UserUpdate, Ward, WardUpdate

from . import __version__
from .errors import ProblemError
from .services import identity
from .settings import Settings, SettingsError
from .stores import Store, StoreError, schema_status, store_for
from .stores.sqlite.store import path_from_url

__all__ = ["main"]

T = TypeVar("T")
_DEFAULT_DB = Settings().db_url


class CommandError(Exception):
    """A failure to report as one plain line."""


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except SettingsError as exc:
        raise CommandError(str(exc)) from None


def _must_exist(db: str) -> None:
    """Refuse a SQLite store that does not exist (a PostgreSQL database must exist anyway)."""
    if db.split(":", 1)[0].lower() != "sqlite":
        return
    try:
        path = path_from_url(db)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not path.parent.is_dir():
        raise CommandError(f"no folder {path.parent} for the store {path.name}: check --db")
    if not path.is_file():
        raise CommandError(f"no store at {path}: check --db, or create it with `patrol-sync admin bootstrap --db {db}`")


def _run_with_store(db: str, action: Callable[[Store], Awaitable[T]], *, create: bool = False) -> T:
    """Open the store (migrating it), run ``action``, close. Only ``create`` makes a new SQLite file."""
    if not create:
        _must_exist(db)

    async def run() -> T:
        try:
            store = store_for(db)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        try:
            await store.open()
        except StoreError:
            raise
        except Exception as exc:  # a driver's own error (refused password, bad URL): one line, not a traceback
            raise CommandError(f"cannot open the store: {type(exc).__name__}: {exc}") from None
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

    from .http.observability import logging_config

    settings = _settings(db_url=args.db, blob_dir=args.blobs, trusted_proxies=args.forwarded_allow_ips)
    try:  # before the store is made: a host typo is not a reason to create one
        socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise CommandError(f"--host {args.host}: {getattr(exc, 'strerror', None) or exc}") from None
    # opened (and migrated) here once, so that an unreachable, missing or too new store is
    # one plain line before any worker starts, not a traceback from each of them
    _run_with_store(settings.db_url, _nothing, create=True)
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
        timeout_keep_alive=75,  # a handheld on 2G keeps its connection between requests (uvicorn's 5 s ended it mid-sync)
    )


async def _nothing(_: Store) -> None:
    return None


def cmd_migrate(args: argparse.Namespace) -> None:
    _must_exist(args.db)

    async def status() -> Any:
        try:
            return await schema_status(args.db)
        except ValueError as exc:
            raise CommandError(str(exc)) from None

    try:
        before = asyncio.run(status())
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    if args.check:
        if before.pending:
            s = "" if before.pending == 1 else "s"
            raise CommandError(f"{before.pending} migration{s} pending (schema {before.version}, this version's is {before.latest}): run `patrol-sync migrate`")
        print(f"up to date (schema {before.version})")
        return
    if not before.pending:
        print(f"up to date (schema {before.version})")
        return
    _run_with_store(args.db, _nothing)
    print(f"migrated from schema {before.version} to {before.latest} ({before.pending} applied)")


def cmd_backup(args: argparse.Namespace) -> None:
    from .backup import BackupError, backup

    try:
        info = backup(args.db, args.to, blob_dir=_settings(db_url=args.db).blob_dir or None)
    except BackupError as exc:
        raise CommandError(str(exc)) from None
    print(f"backed up {info.line()}")


def cmd_restore(args: argparse.Namespace) -> None:
    from .backup import BackupError, restore

    try:
        info = restore(args.source, args.db, force=args.force, blob_dir=_settings(db_url=args.db).blob_dir or None)
    except BackupError as exc:
        raise CommandError(str(exc)) from None
    print(f"restored {info.line()}; clients holding older cursors get 410 and pull again")


def cmd_bootstrap(args: argparse.Namespace) -> None:
    try:
        token = _run_with_store(args.db, identity.bootstrap, create=True)
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


def cmd_user_password(args: argparse.Namespace) -> None:
    """The console password (PROTOCOL.md section 8): from a prompt, or standard input
    when it is not a terminal; never from an argument, where ``ps`` would show it."""
    import getpass

    from .services.passwords import PasswordRefused, hash_password

    if sys.stdin.isatty():
        password = getpass.getpass(f"new console password for {args.id}: ")
        if getpass.getpass("the same again: ") != password:
            raise CommandError("the two passwords differ; nothing was changed")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        hashed = hash_password(password)
    except PasswordRefused as exc:
        raise CommandError(str(exc)) from None
    _run_with_store(args.db, lambda s: s.set_password(args.id, hashed))
    print(f"console password set for {args.id}")


def cmd_device_add(args: argparse.Namespace) -> None:
    request = _valid(NewDevice(device_id=args.device_id, user_id=args.user))
    issued = _run_with_store(args.db, lambda s: identity.issue_device(s, request))
    print(issued.token)


def cmd_device_revoke(args: argparse.Namespace) -> None:
    _run_with_store(args.db, lambda s: s.revoke_device(args.device_id))
    print(f"revoked {args.device_id}")


def cmd_device_token(args: argparse.Namespace) -> None:
    issued = _run_with_store(args.db, lambda s: identity.reissue_token(s, args.device_id))
    print(issued.token)


def cmd_device_enrol(args: argparse.Namespace) -> None:
    from .services.enrolment import EnrolmentService

    settings = Settings.from_env()
    base = args.url or settings.public_url or "http://127.0.0.1:8000"
    request = _valid(EnrolmentRequest(user_id=args.user))
    enrolment = _run_with_store(args.db, lambda s: EnrolmentService(s, settings).create(args.device_id, request, base))
    _print_rows([enrolment])


def _id_list(text: str | None) -> list[str] | msgspec.UnsetType:
    """``a,b`` as a list; an empty text clears the list; absent (None) leaves it."""
    if text is None:
        return msgspec.UNSET
    return [part.strip() for part in text.split(",") if part.strip()]


def cmd_user_update(args: argparse.Namespace) -> None:
    changes = UserUpdate(
        name=msgspec.UNSET if args.name is None else args.name,
        role=msgspec.UNSET if args.role is None else args.role,
        team_ids=_id_list(args.teams),
        ward_ids=_id_list(args.wards),
    )
    user = _run_with_store(args.db, lambda s: identity.update_user(s, args.id, _valid(changes)))
    _print_rows([user])


def _user_state(disabled: bool) -> Callable[[argparse.Namespace], None]:
    def run(args: argparse.Namespace) -> None:
        user = _run_with_store(args.db, lambda s: identity.update_user(s, args.id, UserUpdate(disabled=disabled)))
        _print_rows([user])

    return run


def cmd_ward_rename(args: argparse.Namespace) -> None:
    changes = _valid(WardUpdate(name=args.name))
    _print_rows([_run_with_store(args.db, lambda s: identity.rename_ward(s, args.id, changes))])


def cmd_team_update(args: argparse.Namespace) -> None:
    changes = _valid(TeamUpdate(name=msgspec.UNSET if args.name is None else args.name, ward_id=msgspec.UNSET if args.ward is None else args.ward))
    _print_rows([_run_with_store(args.db, lambda s: identity.update_team(s, args.id, changes))])


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
        from patrol_demo import run_demo
    except ImportError:
        raise CommandError("the demo is not part of this build") from None
    if args.serve and args.port:  # say so now, not after the whole scenario
        import socket

        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", args.port))
            except OSError:
                raise CommandError(f"port {args.port} is in use; choose another with --port (0: any free port)") from None
    sys.exit(run_demo(seed=args.seed, serve=args.serve, port=args.port, as_json=args.json))


# -- parser -----------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one plain line (exit 2), like every other error; ``--help`` has the rest."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r} (0-65535)")
    return port


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of at least 1: {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="patrol-sync", description="Offline-first sync server for ward patrols.")
    parser.add_argument("--version", action="version", version=f"patrol-sync {__version__} (protocol 1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--db", default=os.environ.get("PATROL_SYNC_DB_URL", _DEFAULT_DB), help="sqlite:///file.db (default) or postgresql://...")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--workers", type=_positive, default=1)
    serve.add_argument(
        "--forwarded-allow-ips", default=None, metavar="ADDRS",
        help="reverse proxies (addresses, networks or *) whose X-Forwarded-For/-Proto are believed (PATROL_SYNC_TRUSTED_PROXIES)",
    )
    serve.add_argument(
        "--blobs", default=None, metavar="DIR",
        help="folder for attachments (default: beside the SQLite file, x.db -> x.blobs; required with PostgreSQL: a volume every worker shares)",
    )
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="bring a store to this version's schema (serve does it too)")
    migrate.add_argument("--db", default=os.environ.get("PATROL_SYNC_DB_URL", _DEFAULT_DB), help="the server's database URL")
    migrate.add_argument("--check", action="store_true", help="change nothing: exit 1 if migrations are pending")
    migrate.set_defaults(run=cmd_migrate)

    demo = commands.add_parser("demo", help="run the demo scenario on a temporary embedded store")
    demo.add_argument("--seed", type=int, default=2023)
    demo.add_argument("--serve", action="store_true", help="then keep the server running and print the console's address and a sign-in")
    demo.add_argument("--port", type=int, default=8000, help="the port to serve on with --serve (0: any free port)")
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
    p = with_db(ward.add_parser("rename", help="rename a ward (its time zone stays)"))
    p.add_argument("id")
    p.add_argument("name")
    p.set_defaults(run=cmd_ward_rename)

    team = admin.add_parser("team", help="teams").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = with_db(team.add_parser("add", help="add a team"))
    p.add_argument("id")
    p.add_argument("name")
    p.add_argument("--ward", required=True)
    p.set_defaults(run=cmd_team_add)
    with_db(team.add_parser("list", help="list teams")).set_defaults(run=_lister(Team))
    p = with_db(team.add_parser("update", help="rename a team, or move it to another ward while no record names it"))
    p.add_argument("id")
    p.add_argument("--name")
    p.add_argument("--ward", help="the ward to move the team to")
    p.set_defaults(run=cmd_team_update)

    user = admin.add_parser("user", help="users").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = with_db(user.add_parser("add", help="add a user"))
    p.add_argument("id")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=["officer", "supervisor", "admin"])
    p.add_argument("--team", action="append", help="a team of the user (repeat for several)")
    p.add_argument("--ward", action="append", help="a ward the user oversees without a team (repeat)")
    p.set_defaults(run=cmd_user_add)
    with_db(user.add_parser("list", help="list users")).set_defaults(run=_lister(User))
    p = with_db(user.add_parser("update", help="change a user's name, role, teams or wards (scope follows at once)"))
    p.add_argument("id")
    p.add_argument("--name")
    p.add_argument("--role", choices=["officer", "supervisor", "admin"])
    p.add_argument("--teams", metavar="A,B", help="all of the user's teams, comma-separated ('' for none)")
    p.add_argument("--wards", metavar="A,B", help="all the wards the user oversees without a team ('' for none)")
    p.set_defaults(run=cmd_user_update)
    for action, disabled, text in (("disable", True, "his devices get 401 until he is enabled"), ("enable", False, "his devices work again")):
        p = with_db(user.add_parser(action, help=f"{action} a user: {text}"))
        p.add_argument("id")
        p.set_defaults(run=_user_state(disabled))
    p = with_db(user.add_parser("password", help="set a user's console password (read from standard input or a prompt)"))
    p.add_argument("id")
    p.set_defaults(run=cmd_user_password)

    device = admin.add_parser("device", help="devices and their tokens").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = with_db(device.add_parser("add", help="register a device and print its token"))
    p.add_argument("device_id")
    p.add_argument("--user", required=True)
    p.set_defaults(run=cmd_device_add)
    p = with_db(device.add_parser("revoke", help="revoke a device's token"))
    p.add_argument("device_id")
    p.set_defaults(run=cmd_device_revoke)
    with_db(device.add_parser("list", help="list devices (never tokens)")).set_defaults(run=_lister(Device))
    p = with_db(device.add_parser("token", help="re-issue a device's token and print it (the old one stops; a revoked device comes back)"))
    p.add_argument("device_id")
    p.set_defaults(run=cmd_device_token)
    p = with_db(device.add_parser("enrol", help="make a one-time enrolment code (10 minutes) and print it with its URL and expiry"))
    p.add_argument("device_id")
    p.add_argument("--user", help="register the device for this user if it does not exist yet")
    p.add_argument("--url", help="the server's address as handhelds reach it (default: PATROL_SYNC_PUBLIC_URL, else http://127.0.0.1:8000)")
    p.set_defaults(run=cmd_device_enrol)
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
