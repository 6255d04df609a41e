"""What a plain `pip install` ships: the sample bundles and LICENSE, never the maintainer tools or
the tests; `ctcl-map samples copy` works from the installed package alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build_folder = REPOSITORY / "build"  # setuptools builds in the source tree: leave it as found
    existed = build_folder.exists()
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                            str(REPOSITORY)], capture_output=True, text=True)
    if not existed:
        shutil.rmtree(build_folder, ignore_errors=True)
    if built.returncode != 0:
        pytest.fail(f"pip wheel failed: {built.stderr[-2000:]}")
    return next(out.glob("ctcl_map-*.whl"))


def test_wheel_ships_samples_and_licence_not_tools_or_tests(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ctcl_map/samples/ss_mogamulizumab_died.json" in names
    assert "ctcl_map/samples/site-mappings/therapies.csv" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert not [name for name in names if name.startswith(("ctcl_map/tools/", "ctcl_map/tests/", "ctcl_map/.ci/"))]


def test_samples_copy_works_from_the_wheel_alone(wheel, tmp_path):
    """The wheel first on sys.path (ahead of this checkout's editable install): the samples come
    out of the installed package's data, not the repository."""
    script = ("import sys, ctcl_map; from pathlib import Path; "
              "assert ctcl_map.__file__.startswith(sys.argv[1]), ctcl_map.__file__; "
              "from ctcl_map.synthetic.shipped import copy_shipped_samples; "
              "print(len(copy_shipped_samples(Path(sys.argv[2]))))")
    done = subprocess.run([sys.executable, "-c", script, str(wheel), str(tmp_path / "demo")],
                          env={"PYTHONPATH": str(wheel), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    copied = tmp_path / "demo" / "ss_mogamulizumab_died.json"
    assert copied.read_bytes() == (REPOSITORY / "samples" / "ss_mogamulizumab_died.json").read_bytes()
    assert (tmp_path / "demo" / "site-mappings" / "therapies.csv").exists()
