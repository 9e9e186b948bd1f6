"""Benchmark: the default study end to end (what `make study` runs), then the same study again.

Prints: wall time of `robstudy study` on a fresh folder (train the zoo, evaluate every setting, render the
report), the counts it reports, and the wall time and counts of a second run that must reuse every stored result.
Run: .venv/bin/python benchmarks/study.py [hydra overrides...]
"""
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

exe = str(Path(sys.executable).parent / "robstudy")
overrides = sys.argv[1:]


def timed(*args, cwd):
    t0 = time.perf_counter()
    r = subprocess.run([exe, *args, *overrides], cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"robstudy {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return dt, r.stdout


with tempfile.TemporaryDirectory() as d:
    first, out1 = timed("study", "progress=false", cwd=d)
    second, out2 = timed("run", "progress=false", cwd=d)
    counts = lambda out: re.search(r"\d+ models .*? records", out).group(0)
    print(f"default study, fresh (train + evaluate + report): {first:6.1f} s   [{counts(out1)}]")
    print(f"same study again (robstudy run):                  {second:6.1f} s   [{counts(out2)}]")
    reused = re.search(r"trained 0, loaded 0, evaluated 0", out2) is not None
    print(f"second run reused every stored result: {reused}")
    print(f"target: fresh <= 300 s -> {'met' if first <= 300 else 'MISSED'}")
