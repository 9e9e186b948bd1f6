"""Benchmark: the adversarial report of a study, rendered once with its default budget (target: at most 30 s
of attack time, wall clock, for the default digits zoo on a 2-core CPU: "well under a minute").

Prints: the wall time of `robstudy report report.notebooks=[adversarial] report.force=true` (kernel start, attacks,
figures, HTML), what was attacked (models, images, the APGD budget), and the attack time per stage, in wall seconds and
in CPU seconds of the report's kernel (all its threads; with --threads 1, the figure that depends least on what else
the machine runs).
Run: .venv/bin/python benchmarks/adversarial.py [FOLDER] [--threads N] [hydra overrides...]
  FOLDER: a folder where `robstudy run` (or `study`) already ran; without it, the default study is trained first in a
  temporary folder (minutes). Overrides go to both, e.g. device=cpu test_sets=[] or
  +report.parameters.adversarial.autoattack=full.
  --threads N: OMP_NUM_THREADS=N for the report's process only (on a machine shared with other jobs, torch's threads
  spin while they wait for a core: N=1 measures the attacks' own cost).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

exe = str(Path(sys.executable).parent / "robstudy")
args = sys.argv[1:]
folder = Path(args.pop(0)) if args and "=" not in args[0] and not args[0].startswith("--") else None
env = dict(os.environ)
if "--threads" in args:
    i = args.index("--threads")
    env["OMP_NUM_THREADS"] = args[i + 1]
    del args[i:i + 2]


def robstudy(*cmd, cwd):
    "Run `robstudy CMD... progress=false OVERRIDES...` in `cwd`; returns the wall seconds and its output."
    t0 = time.perf_counter()
    r = subprocess.run([exe, *cmd, "progress=false", *args], cwd=cwd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if r.returncode: sys.exit(f"robstudy {' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return dt, r.stdout


def main(d: Path):
    if not (d / "runs").is_dir():
        dt, _ = robstudy("run", cwd=d)
        print(f"trained and evaluated the study first: {dt:6.1f} s")
    wall, out = robstudy("report", "report.notebooks=[adversarial]", "report.force=true", cwd=d)
    figs = sorted(d.glob("reports/*/adversarial.json"), key=lambda p: p.stat().st_mtime)[-1]
    f = json.loads(figs.read_text())
    aa = f["autoattack"]
    print(f"adversarial report of {f['study']!r}, rendered: {wall:6.1f} s wall (threads: {env.get('OMP_NUM_THREADS', 'torch default')})")
    print(f"  attacked: {f['n_models']} of {f['n_study_models']} models (models_per_family={f['models_per_family']}), "
          f"{f['n_examples']} of {f['n_test_images']} test images, eps = {', '.join(f['epsilon_labels'])}, "
          f"PGD {f['pgd']['steps']} steps x {f['pgd']['restarts']} restarts")
    print(f"  AutoAttack-style budget: {aa['budget']}")
    for stage, t in f["timing"].items():
        print(f"  {stage:<26} {t['seconds']:7.1f} s wall {t['cpu_seconds']:7.1f} s CPU")
    print(f"  {'attacks in all':<26} {f['seconds']:7.1f} s wall {f['cpu_seconds']:7.1f} s CPU"
          f"   target: <= 30 s of attack time (wall) -> {'met' if f['seconds'] <= 30 else 'MISSED'}")


if folder: main(folder)
else:
    with tempfile.TemporaryDirectory() as t: main(Path(t))
