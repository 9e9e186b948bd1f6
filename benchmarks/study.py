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
    name = next((o.split("=", 1)[1] for o in overrides if o.startswith("study=")), "default")
    print(f"{name} study, fresh (train + evaluate + report): {first:6.1f} s   [{counts(out1)}]")
    print(f"same study again (robstudy run):                  {second:6.1f} s   [{counts(out2)}]")
    reused = re.search(r"trained 0, loaded 0, evaluated 0", out2) is not None
    print(f"second run reused every stored result: {reused}")
    # issue 17: Fashion-MNIST (60,000 + 10,000 images, 12 models) end to end within 15 minutes; the default study 5.
    target = 900 if any(o.startswith("study=fashion") for o in overrides) else 300
    print(f"target: fresh <= {target} s -> {'met' if first <= target else 'MISSED'}")
