"""Every library notebook's tests, run through pytest (one case per notebook), as nbdev_test runs them."""
import os
from configparser import ConfigParser
from pathlib import Path

import pytest
from nbdev.test import test_nb as run_notebook_tests

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "nbs").glob("[0-9]*.ipynb"))


def _skip_flags():
    cfg = ConfigParser(delimiters=["="]); cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"].get("tst_flags", "").split()


@pytest.mark.notebooks
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(nb):
    if os.environ.get("ROBSTUDY_NBDEV_TESTED") == "1":
        pytest.skip("nbdev_test ran every notebook's tests in this `make test`, and they passed")
    ok, secs = run_notebook_tests(nb, skip_flags=_skip_flags(), do_print=False, showerr=True)
    assert ok, f"{nb.name} failed its tests (see the traceback above)"


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 8, [p.name for p in NOTEBOOKS]
