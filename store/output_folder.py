"""Output folders we write files into (`export`, `samples generate`): a folder, never a file, and
no file written through a symbolic link that leads outside it (a planted `person.csv ->
/home/user/.bashrc` in a shared folder must not be overwritten)."""

from __future__ import annotations

from pathlib import Path

from ctcl_map.errors import OutputPathError


def prepare_output_folder(out_dir: Path) -> Path:
    """Create `out_dir` if absent; refuse an existing file."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputPathError(f"{out_dir} is a file, not a folder: give a folder to write into")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a dangling symlink, or a file on the way
        raise OutputPathError(f"cannot create the folder {out_dir}: a file or broken link is in the way") from None
    return out_dir


def inside(root: Path, path: Path) -> Path:
    """`path`, refused when it, or a folder on the way, is a symbolic link leading outside `root`."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise OutputPathError(f"{path} is a symbolic link leading outside {root}: refusing to write through it")
    return path
