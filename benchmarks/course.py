"""Benchmark: every course lesson rendered at full size (quick=False, solutions shown) through papermill.

Prints, per lesson, the wall time of `run_report` (kernel start, execution, HTML) and the CPU time of the kernel
and its children, then the totals and whether each lesson met the 2-minute target. On a shared machine the wall
time includes waiting for the CPU; the CPU time does not.
Run: .venv/bin/python benchmarks/course.py [lesson-name-substring ...] [--quick] [--out reports/course]
"""
import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from robstudy.reports import run_report, write_index  # noqa: E402

COURSE = ROOT / "nbs" / "course"


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("only", nargs="*", help="substrings of lesson names to run (default: all)")
    ap.add_argument("--quick", action="store_true", help="quick mode (as the tests run)")
    ap.add_argument("--hide-solutions", action="store_true")
    ap.add_argument("--out", default=None, help="folder for the rendered lessons (default: a temporary folder)")
    a = ap.parse_args()
    lessons = [p.stem for p in sorted(COURSE.glob("[0-9]*.ipynb")) if not a.only or any(s in p.stem for s in a.only)]
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="course-bench-"))
    print(f"{len(lessons)} lessons, quick={a.quick}, show_solutions={not a.hide_solutions}, out={out}")
    print(f"{'lesson':45s} {'status':7s} {'wall s':>8s} {'cpu s':>8s}  target (wall <= 120 s)")
    tw = tc = 0.0
    for name in lessons:
        c0, t0 = children_cpu(), time.perf_counter()
        rec = run_report(name, {"quick": a.quick, "show_solutions": not a.hide_solutions}, out, nb_folder=COURSE, study="course", force=True)
        wall, cpu = time.perf_counter() - t0, children_cpu() - c0
        tw += wall; tc += cpu
        print(f"{name:45s} {rec['status']:7s} {wall:8.1f} {cpu:8.1f}  {'met' if wall <= 120 else 'MISSED'}"
              + ("" if rec["status"] == "ok" else f"\n    {rec.get('error')}"), flush=True)
    print(f"{'total':45s} {'':7s} {tw:8.1f} {tc:8.1f}")
    if a.out: write_index(out.parent)


if __name__ == "__main__":
    main()
