"""Shared fixtures: the repository root, the venv's console scripts, the reference-results folder, and one tiny study
trained and reported once per test session, shared by every test (and every xdist worker) that only reads it."""
import fcntl
import json
import os
import shutil
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


# the study the CLI, report and browser tests share: 8 models x (clean + 2 shifts x 2 severities)
SHARED = ["zoo=tiny", "device=cpu", "progress=false", "shifts.names=[gaussian_noise,rotation]", "shifts.severities=[1,3]", "test_sets=[]"]


@pytest.fixture(scope="session")
def shared_study(tmp_path_factory):
    """The shared study: `robstudy run`, `run` again, then `report` (the default reports), built once per session under a
    file lock in the folder every xdist worker shares. Read it; a test that changes it works on `copy_study(...)`."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"): root = root.parent
    d, done = root / "shared-study", root / "shared-study.json"
    with open(root / "shared-study.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            d.mkdir(exist_ok=True)
            runs = {name: run_robstudy(*args, *SHARED, cwd=d) for name, args in
                    (("first", ["run"]), ("second", ["run"]), ("report", ["report"]))}
            done.write_text(json.dumps({k: dict(returncode=r.returncode, stdout=r.stdout, stderr=r.stderr) for k, r in runs.items()}))
    return dict(dir=d, **json.loads(done.read_text()))


def copy_study(shared, dest: Path) -> Path:
    "A private copy of the shared study's folder (runs/ and reports/), for a test that changes it."
    shutil.copytree(shared["dir"], dest, symlinks=True)
    return dest


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: an exhaustive end-to-end case (every lesson, every crash point, both sweep launchers, ...); "
                                       "`make test` leaves these out to stay within 5 minutes, `make test-slow` runs them, CI runs both")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skips without one)")




# the test files that read the shared study: under xdist they run on one worker, one after the other, while the other
# worker takes the remaining files (instead of both waiting for the study to be built); a test elsewhere that asks for
# the shared study is an error, so this list cannot fall behind
SHARED_STUDY_FILES = {"test_adversarial_report.py", "test_browser.py", "test_cli.py", "test_cli_talks.py", "test_readme.py",
                      "test_report_figures.py", "test_reports.py"}


def pytest_collection_modifyitems(config, items):
    stray = sorted({i.path.name for i in items if "shared_study" in i.fixturenames and i.path.name not in SHARED_STUDY_FILES})
    if stray: raise pytest.UsageError(f"tests/conftest.py: add {stray} to SHARED_STUDY_FILES (they use the shared study)")


def pytest_xdist_make_scheduler(config, log):
    "`--dist loadfile` (as the Makefile runs pytest), with the files of SHARED_STUDY_FILES as one unit."
    if config.getvalue("dist") != "loadfile": return None
    from xdist.scheduler import LoadFileScheduling

    class SharedStudyTogether(LoadFileScheduling):
        def _split_scope(self, nodeid):
            f = nodeid.split("::", 1)[0]
            return "shared-study" if Path(f).name in SHARED_STUDY_FILES else f
    return SharedStudyTogether(config, log)
