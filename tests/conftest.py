"""Shared fixtures: the repository root, the venv's console scripts, and the reference-results folder."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# the `robstudy` console script of this environment
ROBSTUDY = [str(BIN / "robstudy")] if (BIN / "robstudy").exists() else [sys.executable, "-m", "robstudy.cli"]


def run_robstudy(*args, cwd, timeout=600):
    "Run `robstudy ARGS...` in `cwd`; returns the finished process (stdout and stderr as text)."
    return subprocess.run([*ROBSTUDY, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def reference_dir():
    "The published reference tables: $ROBSTUDY_REFERENCE, else ../shared/reference-results beside the repo; None if absent."
    for cand in (os.environ.get("ROBSTUDY_REFERENCE"), ROOT.parent / "shared" / "reference-results"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


@pytest.fixture
def root():
    return ROOT


@pytest.fixture
def robstudy_cmd():
    "The `robstudy` console script of this environment."
    return list(ROBSTUDY)


@pytest.fixture
def reference():
    d = reference_dir()
    if d is None:
        pytest.skip("reference results (../shared/reference-results) are not available")
    return d
