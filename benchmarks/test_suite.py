"""Benchmark: wall time of the test suite, as the Makefile runs it.

`make test`: `nbdev_test` over the notebooks, then pytest without the tests marked slow (skipping the notebook cases
nbdev_test passed); target: at most 5 minutes on a 2-core machine. Then `make test-slow` (the slow tier), which has
no target but is printed. Both with each test worker's torch on one thread, as the Makefile sets it.
Run: .venv/bin/python benchmarks/test_suite.py [--fast-only]
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

root = Path(__file__).resolve().parents[1]
bin_ = Path(sys.executable).parent
pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile", "--durations=12"]
parts = {"nbdev_test": [str(bin_ / "nbdev_test"), "--n_workers", "2"],
         "pytest (not slow)": [*pytest, "-m", "not slow", "tests"],
         "pytest (slow)": [*pytest, "-m", "slow", "tests"]}
if "--fast-only" in sys.argv: parts.pop("pytest (slow)")
env, times = {**os.environ, "OMP_NUM_THREADS": "1"}, {}
for name, cmd in parts.items():
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:   # as the Makefile: the chapters' scratch folders go under a TMPDIR removed after
        r = subprocess.run(cmd, cwd=root, capture_output=True, text=True,
                           env={**env, "TMPDIR": scratch} if name == "nbdev_test" else env)
    if name == "nbdev_test":   # as the Makefile: pytest skips the notebooks nbdev_test passed
        env["ROBSTUDY_NBDEV_TESTED"] = "1" if r.returncode == 0 else "0"
    times[name] = dt = time.perf_counter() - t0
    last = (r.stdout.strip().splitlines() or [""])[-1]
    print(f"{name:<18} {dt:7.1f} s   rc={r.returncode}   {last}", flush=True)
fast = times["nbdev_test"] + times["pytest (not slow)"]
print(f"{'make test':<18} {fast:7.1f} s   target <= 300 s -> {'met' if fast <= 300 else 'MISSED'}")
if "pytest (slow)" in times: print(f"{'make test-slow':<18} {times['pytest (slow)']:7.1f} s")
