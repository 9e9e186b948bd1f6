"""Shared fixtures: the repository root, the venv's console scripts, and the reference-results folder."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


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
    exe = BIN / "robstudy"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "robstudy.cli"]


@pytest.fixture
def reference():
    d = reference_dir()
    if d is None:
        pytest.skip("reference results (../shared/reference-results) are not available")
    return d
