"""Type-check the package with mypy, from a checkout:  python tools/typecheck.py

The repository root is the `ctcl_map` package (pyproject maps it), so mypy, which names modules
after their folders, would see `converters`, `store` ... as top-level modules and `ctcl_map.*`
imports as missing. This links the root under its package name in a temporary folder and checks
`-p ctcl_map` there, with the settings of [tool.mypy] in pyproject.toml. Exit code: mypy's.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ctcl-map-typecheck-") as folder:
        (Path(folder) / "ctcl_map").symlink_to(REPOSITORY, target_is_directory=True)
        command = [sys.executable, "-m", "mypy", "--config-file", str(REPOSITORY / "pyproject.toml"),
                   "--cache-dir", str(REPOSITORY / ".mypy_cache"), "-p", "ctcl_map", *sys.argv[1:]]
        return subprocess.run(command, cwd=folder).returncode


if __name__ == "__main__":
    sys.exit(main())
