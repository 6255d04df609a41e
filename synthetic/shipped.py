"""The sample files shipped inside the package (samples/ at the repository root, package data in
pyproject.toml), copied out for `ctcl-map samples copy`."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

SHIPPED = ("ss_mogamulizumab_died.json", "mf_early_stage.json", "messy_record.json", "single-patient-truth.csv", "README.md",
           "site-mappings")


def copy_shipped_samples(out: Path) -> list[Path]:
    """Copy every shipped sample into `out` (site mappings into out/site-mappings/); the paths written."""
    samples = resources.files("ctcl_map").joinpath("samples")
    copied: list[Path] = []
    for name in SHIPPED:
        copied += _copy(samples.joinpath(name), out / name)
    return copied


def _copy(source: Traversable, target: Path) -> list[Path]:
    if source.is_dir():
        return [path for child in sorted(source.iterdir(), key=lambda entry: entry.name)
                for path in _copy(child, target / child.name)]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    return [target]
