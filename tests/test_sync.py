"""The notebooks are the source of truth: nbdev_export and nbdev_clean must leave the committed tree unchanged."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tracked_files():
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode:
        pytest.skip("not a git checkout")
    return [f for f in out.stdout.split("\0") if f and (ROOT / f).is_file()]


def test_export_and_clean_change_nothing(tmp_path):
    files = _tracked_files()
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, tmp_path / f)
    for cmd in ("nbdev_export", "nbdev_clean"):
        r = subprocess.run([str(BIN / cmd)], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
    changed = [f for f in files if (tmp_path / f).read_bytes() != (ROOT / f).read_bytes()]
    new = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "robstudy").rglob("*.py")
                 if str(p.relative_to(tmp_path)) not in files)
    assert not changed and not new, (
        f"the library is out of sync with nbs/: changed {changed}, new {new}. "
        "Run nbdev_export and nbdev_clean, then commit.")
