"""The package is imported once, as ctcl_map: the repository root is the package (pyproject maps
ctcl_map to "."), so a test runner that imports the root __init__.py by its path would make a second
ctcl_map under the checkout folder's name, with its own module state (the default "prepend" import
mode of pytest did exactly that; pyproject sets --import-mode=importlib)."""

from __future__ import annotations

import sys
from pathlib import Path

import ctcl_map


def test_the_package_root_is_in_sys_modules_under_one_name_only():
    root = Path(ctcl_map.__file__).resolve()
    names = sorted(name for name, module in list(sys.modules.items())
                   if getattr(module, "__file__", None) and Path(module.__file__).resolve() == root)
    assert names == ["ctcl_map"]

