"""Benchmark: regenerating every report of the default study when nothing changed (target <= 20 s), against
re-executing them all (report.force=true).

Prints: the wall time of `robstudy report` with nothing changed (every report found up to date, the index rebuilt),
and of `robstudy report report.force=true` (every notebook executed and rendered again), with each report's status.
Run: .venv/bin/python benchmarks/reports.py [FOLDER] [hydra overrides...]
  FOLDER: a folder where `robstudy study` already ran (it has runs/ and reports/); without it, the default study is
  run first in a temporary folder (minutes: it trains the zoo).
"""
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

exe = str(Path(sys.executable).parent / "robstudy")
args = sys.argv[1:]
folder = Path(args.pop(0)) if args and not "=" in args[0] else None


def timed(*cmd, cwd):
    t0 = time.perf_counter()
    r = subprocess.run([exe, *cmd, "progress=false", *args], cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode: sys.exit(f"robstudy {' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return dt, r.stdout


def main(d: Path):
    if not (d / "runs").is_dir():
        dt, _ = timed("study", cwd=d)
        print(f"default study, fresh (train + evaluate + every report): {dt:6.1f} s")
    else:
        timed("report", cwd=d)  # bring the reports up to date first
    same, out = timed("report", cwd=d)
    n = len(re.findall(r"^\s+ok\s", out, flags=re.M)); cached = out.count("unchanged, not re-run")
    print(f"regenerate all reports, nothing changed:  {same:6.1f} s   [{cached} of {n} reports up to date, index rebuilt]")
    forced, out = timed("report", "report.force=true", cwd=d)
    per = re.findall(r"ok\s+\S+/(\w+)\.html\s+\(([\d.]+) s\)", out)
    print(f"re-execute all reports (report.force=true): {forced:6.1f} s   [" + ", ".join(f"{k} {v} s" for k, v in per) + "]")
    print(f"target: nothing changed <= 20 s -> {'met' if same <= 20 else 'MISSED'}")


if folder: main(folder)
else:
    with tempfile.TemporaryDirectory() as t: main(Path(t))
