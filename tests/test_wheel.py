"""`make wheel`'s path works: an abi3 wheel builds, installs into a fresh venv and imports."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MATURIN = Path(sys.executable).parent / "maturin"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_abi3_wheel_builds_installs_and_imports(tmp_path: Path) -> None:
    if not MATURIN.exists():
        pytest.skip("maturin is not installed in this environment")
    dist = tmp_path / "dist"
    subprocess.run(
        [str(MATURIN), "build", "--release", "-q", "--out", str(dist)],
        cwd=ROOT,
        check=True,
    )
    wheels = list(dist.glob("hbeam-*.whl"))
    assert len(wheels) == 1, wheels
    assert "abi3" in wheels[0].name, wheels[0].name

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # --no-deps: the core imports without its runtime dependencies; no network needed.
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheels[0])], check=True)
    probe = (
        "import hbeam; assert hbeam.BACKEND == 'native', hbeam.BACKEND; "
        "m = hbeam.Message({'a': {'b': 1}}); assert m.get_path('a/b') == 1; "
        "assert len(hbeam.id(m)) == 43; print('ok')"
    )
    out = subprocess.run(
        [str(py), "-c", probe], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == "ok"
