"""A Parquet CDM: one folder of Parquet files per table, and atomic publishing of new versions.

Layout (CDM_DIR is what readers open; the versions live beside it):

    CDM_DIR -> CDM_DIR.versions/<version>      a symbolic link (relative, so the pair can move)
    CDM_DIR.versions/<version>/<table>/*.parquet   one folder per CDM (or ctcl_) table
    CDM_DIR.versions/<version>.writing         held (flock) by the writer of an unpublished version
    CDM_DIR.versions/.publish.lock             publishers take turns on it

A writer asks `new_version_dir` for an empty folder, writes its <table>/ folders into it and calls
`publish`, which replaces the link by a new one in one rename(2): a reader opening CDM_DIR/<table>/
sees the old version or the new one, never a half-written one; a writer that dies before publishing
leaves CDM_DIR as it was. Published versions are never changed again, so a reader that resolves the
link once (store/parquet_database.py does) reads one consistent version.

After publishing, the version before the previous one is removed, and so is any unpublished version
whose writer is gone (its .writing lock is free): the previous version is kept so that a reader that
resolved the link just before the swap can finish. This relies on POSIX rename(2), symbolic links
and flock(2) on one local (or POSIX-compliant network) filesystem; object stores (S3, ABFS, GCS)
have no atomic rename: there, write each version to its own path and hand readers that path.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ctcl_map.cdm.schema import cdm_fields
from ctcl_map.errors import DatabaseError, OutputPathError, OutputWriteError
from ctcl_map.store.ctcl_tables import declared_types

VERSIONS_SUFFIX = ".versions"
WRITING_SUFFIX = ".writing"
PUBLISH_LOCK = ".publish.lock"
PART_FILE = "part-00000.parquet"  # the one file per table our own writers put in a table folder
# Our tables the analysis commands read (survival's advanced-stage cohorts), written with the CDM.
ANALYSIS_TABLES = ("ctcl_first_advanced",)

_writer_locks: dict[Path, int] = {}  # version folder -> the open, flock'ed descriptor of its .writing file


class PublishConflict(OutputWriteError):
    """Another writer published a version of the CDM after the one this write started from."""


def versions_dir(cdm_dir: Path) -> Path:
    """Where the versions of `cdm_dir` live: beside it, named <name>.versions."""
    cdm_dir = Path(cdm_dir)
    return cdm_dir.parent / f"{cdm_dir.name}{VERSIONS_SUFFIX}"


def is_parquet_cdm(path: str | Path) -> bool:
    """True for a folder (or a link to one) holding a CDM table as a folder of Parquet files."""
    if "://" in str(path):
        return False  # a database URL
    folder = Path(path)
    if not folder.is_dir():
        return False
    return any(any((folder / table).glob("*.parquet")) for table in cdm_fields())


def new_version_dir(cdm_dir: Path) -> Path:
    """A new, empty folder to write <table>/ folders into, then to `publish` as `cdm_dir`.

    It stays marked as being written (its .writing lock held by this process) until it is
    published or this process ends, so a concurrent publish never removes it.
    """
    root = versions_dir(cdm_dir)
    if root.is_symlink():  # a planted link would have us write (and later delete) elsewhere
        raise OutputPathError(f"{root} is a symbolic link: refusing to write versions through it")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputPathError(f"cannot create {root}: a file is in the way") from None
    root = root.resolve()
    # Sortable by creation time: microseconds, then a random part against a same-instant clash.
    now = time.time()
    version = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}Z-{secrets.token_hex(4)}"
    path = root / version
    # The lock before the folder: a folder without a held lock is a dead writer's.
    _writer_locks[path] = _hold_lock(root / f"{version}{WRITING_SUFFIX}")
    path.mkdir()
    return path


def publish(cdm_dir: Path, version_dir: Path, *, expected: Path | None | bool = True) -> None:
    """Make `version_dir` (from `new_version_dir(cdm_dir)`) what `cdm_dir` shows, atomically.

    `expected`: True publishes over whatever is current; a version folder (or None for "nothing
    published yet") publishes only if that is still current, else raises PublishConflict.
    """
    cdm_dir, version_dir = Path(cdm_dir), Path(version_dir)
    root = versions_dir(cdm_dir)
    if version_dir.parent.resolve() != root.resolve() or not version_dir.is_dir():
        raise OutputPathError(f"{version_dir} is not a version folder of {cdm_dir} (see new_version_dir)")
    if cdm_dir.exists() and not cdm_dir.is_symlink():
        raise OutputPathError(f"{cdm_dir} is a folder, not a published Parquet CDM (a link to a version): "
                              "give a new path, or remove the folder")
    _sync_tree(version_dir)  # the files are on disk before any reader is shown them
    with _publish_lock(root):
        previous = current_version(cdm_dir)
        if expected is not True and previous != (Path(expected).resolve() if expected else None):
            raise PublishConflict(f"{cdm_dir} was published anew meanwhile (now {previous.name if previous else 'nothing'})")
        link = cdm_dir.parent / f".{cdm_dir.name}.{version_dir.name}.link"
        if link.is_symlink():
            link.unlink()
        os.symlink(os.path.relpath(version_dir, cdm_dir.parent), link)
        os.replace(link, cdm_dir)  # rename(2): atomic
        _sync_dir(cdm_dir.parent)
        _release_writer_lock(version_dir)
        keep = {version_dir.name} | ({previous.name} if previous else set())
        _remove_old_versions(root, keep)


def current_version(cdm_dir: Path) -> Path | None:
    """The version folder `cdm_dir` shows now (resolved), or None when nothing is published."""
    cdm_dir = Path(cdm_dir)
    if not cdm_dir.is_symlink():
        return None
    target = cdm_dir.resolve()
    return target if target.is_dir() else None


def is_published(cdm_dir: Path) -> bool:
    """Whether `cdm_dir` is a link to one of its versions (else a plain folder: it cannot be republished)."""
    version = current_version(cdm_dir)
    return version is not None and version.parent == versions_dir(cdm_dir).resolve()


def table_folders(version: Path) -> dict[str, Path]:
    """Table name (lower case) -> its folder, for every sub-folder holding a Parquet file."""
    return {child.name.lower(): child for child in sorted(Path(version).iterdir())
            if child.is_dir() and not child.name.startswith((".", "_")) and any(child.glob("*.parquet"))}


def column_sources(table: str, names: list[str], where: Path) -> list[tuple[str, str | None, str]]:
    """(column, its name among the Parquet column `names` or None, SQL type) for each column our DDL
    declares for `table` (matched case-insensitively; other Spark writers may upper-case them).
    A column CDM v5.4 requires must be there; an absent optional one reads as NULL."""
    present = {name.lower(): name for name in names}
    required = {f.name.strip('"') for f in cdm_fields().get(table, ()) if f.required}
    sources = []
    for column, kind in declared_types(table).items():
        column = column.strip('"')
        if column not in present and column in required:
            raise DatabaseError(f"{where} has no column {column}, which CDM v5.4 requires in {table}")
        sources.append((column, present.get(column), kind))
    return sources


def link_tables(source: Path, target: Path, tables: dict[str, Path]) -> None:
    """Put `tables` (folders of `source`) into version folder `target` without copying their data:
    a published version never changes, so its files can be shared by hard links (copied where the
    filesystem has none)."""
    for name, folder in tables.items():
        destination = target / name
        destination.mkdir()
        for file in sorted(folder.iterdir()):
            if file.is_file():
                try:
                    os.link(file, destination / file.name)
                except OSError:
                    shutil.copy2(file, destination / file.name)


def discard(version_dir: Path) -> None:
    """Remove an unpublished version (a write that failed or lost a PublishConflict)."""
    _release_writer_lock(version_dir)
    shutil.rmtree(version_dir, ignore_errors=True)


def _remove_old_versions(root: Path, keep: set[str]) -> None:
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.name.startswith(".") or child.name in keep:
            continue
        lock = root / f"{child.name}{WRITING_SUFFIX}"
        if child.resolve() in _writer_locks or (lock.exists() and not _lock_is_free(lock)):
            continue  # a writer is still filling it
        shutil.rmtree(child, ignore_errors=True)
        lock.unlink(missing_ok=True)
    for lock in root.glob(f"*{WRITING_SUFFIX}"):  # locks of versions removed above or never created
        if not (root / lock.name.removesuffix(WRITING_SUFFIX)).exists() and _lock_is_free(lock):
            lock.unlink(missing_ok=True)


def _hold_lock(path: Path) -> int:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    return descriptor


def _lock_is_free(path: Path) -> bool:
    try:
        descriptor = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)  # closing releases a lock just taken
    return True


def _release_writer_lock(version_dir: Path) -> None:
    descriptor = _writer_locks.pop(Path(version_dir).resolve(), None)
    lock = version_dir.parent / f"{version_dir.name}{WRITING_SUFFIX}"
    lock.unlink(missing_ok=True)
    if descriptor is not None:
        os.close(descriptor)


@contextmanager
def _publish_lock(root: Path) -> Iterator[None]:
    descriptor = _hold_lock(root / PUBLISH_LOCK)
    try:
        yield
    finally:
        os.close(descriptor)


def _sync_tree(folder: Path) -> None:
    """fsync every file and folder under `folder`: a machine crash right after publishing must not
    leave the published version with files the kernel had not written yet."""
    for directory, _, files in os.walk(folder):
        for name in files:
            descriptor = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        _sync_dir(Path(directory))


def _sync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
