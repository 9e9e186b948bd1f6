"""The GPU check's dry run (`make gpu-check DRY=1`): every step of benchmarks/gpu_check.py on the CPU at tiny sizes, so
the command a GPU window depends on cannot rot between windows. It runs the tests marked `gpu` (on the CPU) as well."""
import importlib.util
import json
import subprocess
import sys

import pytest
from pathlib import Path

pytestmark = pytest.mark.slow   # the GPU check's dry run on this CPU: the slow tier (make test-slow)

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("robstudy_gpu_check", ROOT / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(gpu_check)
FIGURES, STEPS = gpu_check.FIGURES, gpu_check.STEPS


def test_dry_run_records_every_step(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry", "--out", str(out)],
                       capture_output=True, text=True, timeout=900)
    summary = json.loads((out / "summary.json").read_text())
    steps = summary["steps"]
    assert list(steps) == list(STEPS)
    bad = {n: (s["status"], s.get("log_tail", "")[-1500:]) for n, s in steps.items() if s["status"] not in ("ok", "skipped")}
    assert not bad and r.returncode == 0, f"{bad}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert steps["install"]["status"] == "skipped" and summary["dry"] and summary["device"] == "cpu"
    for n, s in steps.items():
        if n != "install": assert (out / s["log"]).is_file() and s["seconds"] >= 0 and s["result"], n
    tests = steps["tests"]["result"]
    assert tests["n_passed"] >= 30 and tests["n_failed"] == 0 and tests["device"] == "cpu" and tests["size"] == "tiny"
    assert len(tests["tests"]) == tests["n_passed"] + tests["n_skipped"] and all(t["seconds"] >= 0 for t in tests["tests"])
    assert "python -m robstudy study device=cpu" in steps["study"]["result"]["command"]
    assert (out / "study" / "tables" / "evals.parquet").is_file() and (out / "study" / "reports" / "index.html").is_file()
    for name, f in summary["figures"].items():   # every figure measured (the dry run's values mean nothing, so no verdict)
        assert isinstance(f["value"], float) and f["value"] > 0 and f["met"] is None, (name, f)
    assert set(summary["figures"]) == set(FIGURES)
