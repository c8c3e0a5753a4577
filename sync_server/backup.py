"""Online backup and restore of the embedded (SQLite) store.

**Backup** uses SQLite's online backup API in one step: it copies every page
inside one read transaction, so the copy is the store exactly as of one commit,
while the server goes on writing (WAL readers never block writers). The copy is
written beside its destination, checked (``PRAGMA integrity_check``), flushed to
disk, then renamed into place: a backup file is complete or absent.

**Restore** refuses to overwrite a store that a process has open (every SQLite
connection to a WAL database holds a shared lock on the ``-shm`` file's "dead man
switch" byte; we test for it with the same POSIX lock), unless forced. It copies
the backup into a staging file, gives the copy a **new random epoch** there, then
copies the staging file into the store with the backup API again (one write
transaction: a crash midway leaves the old store or the new one, never a mix).
The new epoch is what makes every pull cursor handed out before the restore
answer 410, so each device drops its pulled state and pulls again from scratch
instead of silently missing the writes the backup does not hold.

**Blobs** (attachments) are files beside the store (``sync_server/blobs``). They are
immutable and never deleted, so copying the ones the destination lacks *after* the
database copy is consistent: every blob stored when the snapshot was taken is in
the copy (a few later ones too, harmlessly). ``backup`` copies them to the folder
beside the backup file (``x.backup`` -> ``x.blobs``), ``restore`` back beside the
store; each file is written to a temporary name, fsync-ed and renamed.

PostgreSQL has its own tools (``pg_dump``/``pg_basebackup``); its store notices a
restore from the positions it stores (``stores/postgres/_cursor.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from .blobs import FileBlobStore, blob_dir_for
from .blobs.files import fsync_path
from .settings import Settings
from .stores.sqlite.store import path_from_url

__all__ = ["BackupError", "StoreInfo", "backup", "in_use", "restore", "sqlite_path"]

#: byte of the -shm file every connection to a WAL database holds a shared lock on
#: (SQLite's unix VFS: UNIX_SHM_BASE 120 + SQLITE_SHM_NLOCK 8)
_SHM_DMS = 128


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class StoreInfo:
    """What a store file holds, as printed after a backup or a restore."""

    path: str
    epoch: str
    schema_version: int
    records: int
    last_seq: int
    changesets: int
    blobs_copied: int = 0

    def line(self) -> str:
        return (
            f"{self.path}: epoch {self.epoch}, schema {self.schema_version}, {self.records} records "
            f"(last seq {self.last_seq}), {self.changesets} change sets, {self.blobs_copied} blob files copied"
        )


def sqlite_path(db_url: str) -> Path:
    if not db_url.startswith("sqlite:"):
        raise BackupError(
            "backup and restore here are for the embedded SQLite store; for PostgreSQL use pg_dump/pg_restore "
            "or pg_basebackup (the server notices a restored database by itself)"
        )
    try:
        return path_from_url(db_url)
    except ValueError as exc:
        raise BackupError(str(exc)) from None


@contextlib.contextmanager
def _connect(path: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        yield conn
    finally:
        conn.close()


def _info(conn: sqlite3.Connection, path: Path) -> StoreInfo:
    try:
        epoch = conn.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        records, last_seq = conn.execute("SELECT count(*), coalesce(max(seq), 0) FROM records").fetchone()
        changesets = conn.execute("SELECT count(*) FROM changesets").fetchone()[0]
    except sqlite3.Error as exc:
        raise BackupError(f"{path} is not a patrol-sync store: {exc}") from None
    if epoch is None:
        raise BackupError(f"{path} is not a patrol-sync store: it has no epoch")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return StoreInfo(str(path), str(epoch[0]), int(version), int(records), int(last_seq), int(changesets))


def _check(conn: sqlite3.Connection, path: Path) -> None:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
    if problems != ["ok"]:
        raise BackupError(f"{path} fails its integrity check: {'; '.join(problems[:5])}")


def in_use(path: Path) -> bool:
    """Whether a process (other than this one) has the store open."""
    try:
        fd = os.open(f"{path}-shm", os.O_RDWR)
    except FileNotFoundError:
        return False  # no connection has opened it in WAL mode since the last clean close
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _SHM_DMS)
        return False
    finally:
        os.close(fd)


def _blob_folder(db_file: Path, configured: str | os.PathLike[str] | None = None) -> Path:
    if configured:
        return Path(configured)
    folder = blob_dir_for(Settings(db_url=f"sqlite:///{db_file.resolve()}"))
    assert folder is not None
    return folder


def copy_blobs(source: Path, target: Path) -> int:
    """Copy the stored blobs of ``source`` that ``target`` lacks (same layout); how many."""
    source_store, target_store = FileBlobStore(source), FileBlobStore(target)
    copied = 0
    for blob_id, path in source_store.stored():  # blobs only: a stray file is never copied
        final = target_store.path(blob_id)
        if final.exists():
            continue
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.copying")
        try:
            shutil.copyfile(path, temp)
            fsync_path(temp)
            os.replace(temp, final)
        finally:
            temp.unlink(missing_ok=True)
        fsync_path(final.parent)
        copied += 1
    return copied


def backup(db_url: str, to: str | os.PathLike[str], *, blob_dir: str | os.PathLike[str] | None = None) -> StoreInfo:
    """Copy the store to ``to``, consistent as of one commit, while the server runs; then
    the blobs it lacks to the folder beside ``to``."""
    source = sqlite_path(db_url)
    target = Path(to)
    if not source.exists():
        raise BackupError(f"no store at {source}")
    if not target.parent.is_dir():
        raise BackupError(f"no folder {target.parent} for the backup {target.name}")
    if target.resolve() == source.resolve():
        raise BackupError("the backup cannot be the store itself")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with _connect(source) as src, _connect(partial) as dst:
            src.backup(dst)  # pages=-1: every page in one step, one read transaction
            dst.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
            _check(dst, target)
            info = _info(dst, target)
        fsync_path(partial)
        os.replace(partial, target)
        fsync_path(target.parent)
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {source} failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    try:  # after the snapshot: every blob it names is stored by now
        copied = copy_blobs(_blob_folder(source, blob_dir), _blob_folder(target))
    except OSError as exc:
        raise BackupError(f"the database is backed up in {target}, but copying the blobs failed: {exc}") from None
    return dataclasses.replace(info, blobs_copied=copied)


def restore(source: str | os.PathLike[str], db_url: str, *, force: bool = False, blob_dir: str | os.PathLike[str] | None = None) -> StoreInfo:
    """Replace the store with a backup, under a new epoch (clients then get 410 and resync);
    then bring back the blobs beside the backup that the store's folder lacks."""
    backup_file = Path(source)
    target = sqlite_path(db_url)
    if not backup_file.is_file():
        raise BackupError(f"no backup at {backup_file}")
    if not force and in_use(target):
        raise BackupError(f"{target} is open in another process (a running server?): stop it first, or pass --force")
    staging = target.with_name(target.name + ".restoring")
    staging.unlink(missing_ok=True)
    if not target.parent.is_dir():  # a typo in the folder must not become a second store
        raise BackupError(f"no folder {target.parent} for the store {target.name}")
    try:
        with _connect(backup_file, readonly=True) as src, _connect(staging) as stage:
            _check(src, backup_file)
            _info(src, backup_file)  # a patrol-sync store, not any SQLite file
            src.backup(stage)
            stage.execute("PRAGMA journal_mode = DELETE")
            stage.execute("BEGIN IMMEDIATE")
            stage.execute("UPDATE meta SET value = ? WHERE key = 'epoch'", (secrets.token_hex(8),))
            stage.execute(
                "INSERT INTO meta (key, value) VALUES ('restored_at', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),),
            )
            stage.execute("COMMIT")
            with _connect(target) as dst:
                stage.backup(dst)  # one write transaction on the store
                dst.execute("PRAGMA journal_mode = WAL")
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                _check(dst, target)
                info = _info(dst, target)
    except sqlite3.Error as exc:
        raise BackupError(f"restore of {target} from {backup_file} failed: {exc}") from None
    finally:
        staging.unlink(missing_ok=True)
    try:
        copied = copy_blobs(_blob_folder(backup_file), _blob_folder(target, blob_dir))
    except OSError as exc:
        raise BackupError(f"the database is restored, but copying the blobs back failed: {exc}; run the restore again") from None
    return dataclasses.replace(info, blobs_copied=copied)
