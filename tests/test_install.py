"""A normal install: the wheel holds every subpackage and every definition, and tdkt runs from it.

The wheel is built from a copy of the sources (no build/ leftovers, nothing written into the
repository) with the project venv's setuptools (no build isolation: fast and offline), then
installed into a fresh venv outside the repository. That venv sees the third-party
dependencies of the project venv through a .pth file, so nothing is downloaded; the pipeline
package itself comes from the wheel only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT, SAMPLES

SOURCES = ("pyproject.toml", "setup.py", "README.md", "pipeline", "schemas")
CONFIG = "input_samples/tdkt.toml"


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=300, check=False)


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result


def _build_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    _ok(_run([sys.executable, "-m", "pip", "wheel", src, "--no-deps", "--no-index",
              "--no-build-isolation", "--check-build-dependencies", "-q", "-w", dist], tmp_path))
    (wheel,) = dist.glob("tdkt-*.whl")
    return wheel


def _venv(tmp_path: Path, wheel: Path) -> tuple[Path, Path, dict[str, str]]:
    """A fresh venv with the wheel installed; returns its folder, its scripts folder, its env."""
    venv = tmp_path / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path))
    scripts = venv / ("Scripts" if os.name == "nt" else "bin")
    python = scripts / ("python.exe" if os.name == "nt" else "python")
    _ok(_run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
              "--no-index", "-q", wheel], tmp_path))
    # After the install (so pip never sees the project's own tdkt): the project venv's
    # site-packages, for the third-party dependencies only. Its .pth files are not run, so
    # the editable install of the source tree stays out.
    purelib = _ok(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                       tmp_path)).stdout.strip()
    deps = dict.fromkeys(sysconfig.get_path(kind) for kind in ("purelib", "platlib"))
    (Path(purelib) / "zz_project_deps.pth").write_text("\n".join(deps) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONIOENCODING="utf-8", PYTHONNOUSERSITE="1", VIRTUAL_ENV=str(venv))
    return venv, scripts, env


@pytest.mark.slow  # builds and installs a wheel (~25 s): `make test-slow`, in CI
def test_wheel_installs_and_runs_the_samples(tmp_path):
    wheel = _build_wheel(tmp_path)

    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {p.parent.relative_to(ROOT).as_posix()
                for p in (ROOT / "pipeline").rglob("__init__.py") if "__pycache__" not in p.parts}
    assert {f"{p}/__init__.py" for p in packages} <= names, "a pipeline subpackage is missing"
    definitions = {f"pipeline/catalog/{p.relative_to(ROOT / 'schemas').as_posix()}"
                   for p in (ROOT / "schemas").rglob("*.yaml")}
    assert definitions <= names, "a definition under schemas/ is missing from the wheel"
    assert {"pipeline/catalog/findings.yaml", "pipeline/catalog/texts.yaml"} <= definitions
    assert not any(n.startswith(("schemas/", "tests/", "input_samples/")) for n in names)

    venv, scripts, env = _venv(tmp_path, wheel)
    python = scripts / ("python.exe" if os.name == "nt" else "python")
    found = _ok(_run([python, "-c", "import importlib.util as u; print(u.find_spec('pipeline')"
                      ".origin)"], tmp_path, env)).stdout.strip()
    package = Path(found).resolve().parent
    assert package.is_relative_to(venv.resolve()), f"pipeline comes from {package}"
    assert {"findings.yaml", "texts.yaml", "forms", "vocab", "rules", "criteria"} <= {
        p.name for p in (package / "catalog").iterdir()}

    # The templates (no output lock) are written while the two rounds are consolidated.
    work = tmp_path / "work"
    shutil.copytree(SAMPLES, work / "input_samples")
    tdkt = scripts / ("tdkt.exe" if os.name == "nt" else "tdkt")
    templates = subprocess.Popen([str(tdkt), "templates", "--out", "out", "--config", CONFIG],
                                 cwd=work, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, encoding="utf-8")
    try:
        _ok(_run([tdkt, "consolidate", "input_samples/hop-thu", "--out", "out", "--config",
                  CONFIG], work, env))
        _ok(_run([tdkt, "consolidate", "input_samples/hop-thu-ket-qua", "--round", "ket-qua",
                  "--registrations", "input_samples/hop-thu", "--out", "out", "--config",
                  CONFIG], work, env))
    finally:
        output, _ = templates.communicate(timeout=300)
    assert templates.returncode == 0, output

    year = work / "out" / "2025-2026"
    assert (year / "dang-ky" / "manifest.json").is_file()
    assert (year / "ket-qua" / "tong-hop-phong.xlsx").is_file()
    assert list((year / "mau-dang-ky").glob("dang-ky_*.xlsx"))
