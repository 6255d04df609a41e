"""A Parquet CDM folder: CDM_DIR/<table>/ as readers see it, replaced whole by a writer.

A writer fills a new version directory (one <table>/ folder per table), then publishes it: each
CDM_DIR/<table> is a symbolic link into the published version, swapped by a rename, so a reader
never opens a half-written table.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

VERSIONS = ".versions"


def new_version_dir(cdm_dir: Path) -> Path:
    """An empty directory, inside cdm_dir, where a writer puts its <table>/ folders."""
    version = Path(cdm_dir) / VERSIONS / uuid.uuid4().hex
    version.mkdir(parents=True)
    return version


def publish(cdm_dir: Path, version_dir: Path) -> None:
    """Make version_dir's tables what cdm_dir shows; the versions no longer shown are removed."""
    cdm_dir = Path(cdm_dir)
    for table in sorted(p.name for p in Path(version_dir).iterdir() if p.is_dir()):
        link = cdm_dir / table
        staged = cdm_dir / f".{table}.{uuid.uuid4().hex}"
        os.symlink(os.path.relpath(Path(version_dir) / table, cdm_dir), staged)
        os.replace(staged, link)
    for earlier in (cdm_dir / VERSIONS).iterdir():
        if earlier.resolve() != Path(version_dir).resolve():
            shutil.rmtree(earlier, ignore_errors=True)
