"""The built wheel carries what the package reads at run time: Lua scripts, dashboard files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "dockyard"


def test_the_wheel_ships_the_lua_scripts_and_the_dashboard(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, timeout=180,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("dockyard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"dockyard/{path.relative_to(SRC).as_posix()}"
        for folder in ("backends/redis/lua", "web/static")
        for path in (SRC / folder).rglob("*")
        if path.is_file()
    }
    assert any(name.endswith("moveToFinished-12.lua") for name in expected)
    assert any(name.endswith("app.js") for name in expected)
    assert any(name.endswith("views/queue.js") for name in expected)  # subfolders too
    assert expected <= names, sorted(expected - names)
    assert "dockyard/py.typed" in names or not (SRC / "py.typed").exists()
