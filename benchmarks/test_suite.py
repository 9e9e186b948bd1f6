"""Benchmark: wall time of the whole test suite (what `make test` runs after installing).

Runs `nbdev_test` over the notebooks, then pytest (skipping the notebook cases nbdev_test passed), exactly as the Makefile does, and prints each part's
wall time and the total. Target: at most 10 minutes on a 2-core machine.
Run: .venv/bin/python benchmarks/test_suite.py
"""
import os
import subprocess
import sys
import time
from pathlib import Path

root = Path(__file__).resolve().parents[1]
bin_ = Path(sys.executable).parent
parts = {"nbdev_test": [str(bin_ / "nbdev_test"), "--n_workers", "2"],
         "pytest": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile", "--durations=12", "tests"]}
total, env = 0.0, dict(os.environ)
for name, cmd in parts.items():
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    if name == "nbdev_test":   # as the Makefile: pytest skips the notebooks nbdev_test passed
        env["ROBSTUDY_NBDEV_TESTED"] = "1" if r.returncode == 0 else "0"
    dt = time.perf_counter() - t0; total += dt
    last = (r.stdout.strip().splitlines() or [""])[-1]
    print(f"{name:<11} {dt:7.1f} s   rc={r.returncode}   {last}")
print(f"{'total':<11} {total:7.1f} s   target <= 600 s -> {'met' if total <= 600 else 'MISSED'}")
