"""Where ctcl-map keeps files it derives and can always rebuild (vocabulary snapshots of a server
CDM, digests of validated mapping files)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_folder() -> Path:
    """$CTCL_MAP_CACHE_DIR, else $XDG_CACHE_HOME/ctcl-map, else ~/.cache/ctcl-map (not created)."""
    if os.environ.get("CTCL_MAP_CACHE_DIR"):
        return Path(os.environ["CTCL_MAP_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ctcl-map"
