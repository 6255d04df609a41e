"""Parquet CDM versions: new_version_dir / publish switch what CDM_DIR shows atomically; a crashed
writer leaves the old version; readers never see a half-written table folder."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ctcl_map.errors import OutputPathError
from ctcl_map.store.parquet_cdm import (
    PublishConflict,
    current_version,
    is_parquet_cdm,
    is_published,
    new_version_dir,
    publish,
    versions_dir,
)

FILES_PER_TABLE = 3


def _write_version(cdm_dir: Path, marker: int, files: int = FILES_PER_TABLE) -> Path:
    """A version whose person/ folder holds `files` files, each holding `marker`."""
    version = new_version_dir(cdm_dir)
    (version / "person").mkdir()
    for index in range(files):
        (version / "person" / f"part-{index:05d}.parquet").write_text(str(marker))
    return version


def _markers(cdm_dir: Path) -> list[str]:
    folder = cdm_dir / "person"
    return [(folder / name).read_text() for name in sorted(os.listdir(folder))]


def test_publish_switches_the_link_and_keeps_only_the_previous_version(tmp_path):
    cdm = tmp_path / "cdm"
    published = []
    for marker in range(3):
        version = _write_version(cdm, marker)
        if marker:
            assert _markers(cdm) == [str(marker - 1)] * FILES_PER_TABLE
        publish(cdm, version)
        published.append(version)
        assert _markers(cdm) == [str(marker)] * FILES_PER_TABLE
    assert cdm.is_symlink() and not os.path.isabs(os.readlink(cdm))  # relative: the pair can move
    assert current_version(cdm) == published[-1].resolve() and is_published(cdm)
    kept = sorted(p.name for p in versions_dir(cdm).iterdir() if p.is_dir())
    assert kept == sorted(p.name for p in published[1:])  # the one before the previous is removed


def test_a_version_not_yet_published_is_not_shown(tmp_path):
    cdm = tmp_path / "cdm"
    publish(cdm, _write_version(cdm, 1))
    pending = _write_version(cdm, 2)
    assert _markers(cdm) == ["1"] * FILES_PER_TABLE
    publish(cdm, pending)
    assert _markers(cdm) == ["2"] * FILES_PER_TABLE


def test_publish_with_an_expected_version_refuses_when_another_was_published_meanwhile(tmp_path):
    cdm = tmp_path / "cdm"
    first = _write_version(cdm, 1)
    publish(cdm, first, expected=None)
    started_from = current_version(cdm)
    publish(cdm, _write_version(cdm, 2))  # another writer wins
    late = _write_version(cdm, 3)
    with pytest.raises(PublishConflict, match="published anew"):
        publish(cdm, late, expected=started_from)
    assert _markers(cdm) == ["2"] * FILES_PER_TABLE


def test_publish_refuses_a_plain_folder_and_a_foreign_version(tmp_path):
    plain = tmp_path / "plain"
    (plain / "person").mkdir(parents=True)
    with pytest.raises(OutputPathError, match="not a published Parquet CDM"):
        publish(plain, _write_version(plain, 1))
    other = _write_version(tmp_path / "other", 1)
    with pytest.raises(OutputPathError, match="not a version folder"):
        publish(tmp_path / "cdm", other)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "linked.versions").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputPathError, match="symbolic link"):
        new_version_dir(tmp_path / "linked")


def test_is_parquet_cdm_needs_a_cdm_table_folder_with_parquet_files(tmp_path):
    assert not is_parquet_cdm(tmp_path)
    assert not is_parquet_cdm("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.parquet").write_text("x")
    assert not is_parquet_cdm(tmp_path)  # not a CDM table
    (tmp_path / "person").mkdir()
    assert not is_parquet_cdm(tmp_path)
    (tmp_path / "person" / "part-00000.parquet").write_text("x")
    assert is_parquet_cdm(tmp_path)
    assert not is_parquet_cdm(tmp_path / "person" / "part-00000.parquet")


_CRASHING_WRITER = """
import os, sys
from pathlib import Path
from ctcl_map.store.parquet_cdm import new_version_dir
version = new_version_dir(Path(sys.argv[1]))
(version / "person").mkdir()
(version / "person" / "part-00000.parquet").write_text("half")
print(version, flush=True)
if sys.argv[2] == "crash":
    os._exit(1)  # dies before publishing, as a killed job would
sys.stdin.read()  # a live writer: holds its version until told to stop
"""


def test_a_writer_that_dies_before_publishing_leaves_the_old_version_and_its_folder_is_removed_later(tmp_path):
    cdm = tmp_path / "cdm"
    publish(cdm, _write_version(cdm, 1))
    crashed = subprocess.run([sys.executable, "-c", _CRASHING_WRITER, str(cdm), "crash"], capture_output=True, text=True)
    assert crashed.returncode == 1
    dead_version = Path(crashed.stdout.strip())
    assert dead_version.is_dir()
    assert _markers(cdm) == ["1"] * FILES_PER_TABLE  # readers still see the old version, whole
    live = subprocess.Popen([sys.executable, "-c", _CRASHING_WRITER, str(cdm), "live"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        live_version = Path(live.stdout.readline().strip())
        publish(cdm, _write_version(cdm, 2))
        assert not dead_version.exists()  # its writer is gone: removed by the next publish
        assert live_version.is_dir()  # a writer still filling its version keeps it
    finally:
        live.communicate("")
    publish(cdm, _write_version(cdm, 3))
    assert not live_version.exists()  # its writer ended without publishing


def test_readers_during_publishes_see_a_whole_version_old_or_new(tmp_path):
    """A reader opens CDM_DIR/person/ and reads every file through that open folder while another
    thread publishes version after version. Each read must see one whole version: all its files,
    all of the same version. The one exception the design allows: a reader still inside a version
    superseded twice over (publish removes it) may find it emptied; that is told apart below."""
    cdm = tmp_path / "cdm"
    first = _write_version(cdm, 0)
    publish(cdm, first)
    started: list[int] = [0]  # markers whose publish has begun
    marker_of = {first.name: 0}
    stop = threading.Event()
    reads: list[tuple[str, ...]] = []
    problems: list[str] = []

    def read_forever() -> None:
        while not stop.is_set():
            try:
                read_once()
            except OSError as problem:  # e.g. CDM_DIR missing for a moment: not atomic
                problems.append(repr(problem))

    def read_once() -> None:
        folder = os.open(cdm / "person", os.O_RDONLY | os.O_DIRECTORY)
        try:
            names = sorted(os.listdir(folder))
            contents = []
            for name in names:
                try:
                    file = os.open(name, os.O_RDONLY, dir_fd=folder)
                except FileNotFoundError:
                    contents.append(None)
                    continue
                with os.fdopen(file) as handle:
                    contents.append(handle.read())
            seen = os.readlink(f"/proc/self/fd/{folder}")
        finally:
            os.close(folder)
        whole = len(contents) == FILES_PER_TABLE and len(set(contents)) == 1 and None not in contents
        if whole:
            reads.append(tuple(contents))  # type: ignore[arg-type]
        elif marker_of[Path(seen.removesuffix(" (deleted)")).parent.name] > started[-1] - 2:
            # not a version being removed (superseded by two later publishes): a half-written one
            problems.append(f"{seen}: {names} {contents}")

    reader = threading.Thread(target=read_forever)
    reader.start()
    try:
        for marker in range(1, 40):
            version = _write_version(cdm, marker)
            marker_of[version.name] = marker
            started.append(marker)
            publish(cdm, version)
            time.sleep(0.002)
    finally:
        stop.set()
        reader.join()
    assert not problems, problems[:3]
    assert len({r[0] for r in reads}) > 1, "the reader never saw a publish happen: the test proves nothing"

