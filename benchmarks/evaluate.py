"""Benchmark: evaluation throughput, and the cost of re-running a finished study.

Prints
 (a) throughput (images/s) of one small CNN (three 3×3 conv layers, width 32) on 32×32 RGB images at batch 4096
     on this machine's device (bf16 autocast on CUDA, float32 elsewhere), and how close the default digits study's
     whole zoo × settings grid (shifts included) gets to the per-model throughput of its models (through
     `predict_logits`, and their bare forward: the network alone on device-resident images);
 (b) the time to re-run a finished default study: `run_study` in process, and `robstudy run` wall time (CLI).

Run: python benchmarks/evaluate.py [--study-dir DIR]
  DIR is a working folder holding runs/digits of a finished default study (`robstudy run` there); without it a
  temporary folder is used and the default study is run first (trains 60 models: minutes).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from robstudy.core import get_device
from robstudy.datasets import load_dataset
from robstudy.evaluate import StudyRun, build_settings, evaluate_test_sets, predict_logits, run_study, split_test_set
from robstudy.store import ResultsStore
from robstudy.models import build_model
from robstudy.zoo import zoo_grid


def _sync(dev):
    if torch.device(dev).type == "cuda": torch.cuda.synchronize(dev)


def throughput(model, x, dev, batch_size=4096, reps=3):
    "Best-of-`reps` images/s of `predict_logits` (logits kept on the device)."
    predict_logits(model, x[:batch_size], batch_size=batch_size, device=dev, on_device=True); _sync(dev)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter(); predict_logits(model, x, batch_size=batch_size, device=dev, on_device=True); _sync(dev)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best


def bare_forward(model, x, dev, batch_size=4096, reps=3):
    "Best-of-`reps` images/s of the model's forward alone: `x` already on the device, no grad, bf16 autocast on CUDA."
    cuda = torch.device(dev).type == "cuda"
    def once():
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            for i in range(0, len(x), batch_size): model(x[i:i + batch_size])
    once(); _sync(dev)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter(); once(); _sync(dev)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best


def study_config(overrides=()):
    "The default study's composed config (with hydra `overrides`), as plain python."
    from robstudy.config import compose
    return compose(overrides)


def grid_vs_forward(dev, overrides=(), batch_size=4096) -> dict:
    "The default study's zoo (untrained: speed does not depend on weights) × settings through the engine, against the models' own speed."
    cfg = study_config(overrides)
    ds = load_dataset(cfg["data"]["name"], **{k: v for k, v in cfg["data"].items() if k != "name"})
    shifts = (cfg["shifts"]["names"], tuple(cfg["shifts"]["severities"]), cfg["shifts"]["seed"])
    settings = build_settings(ds, *shifts)
    cfgs = zoo_grid(cfg["zoo"])
    models = {str(i): build_model(c, ds.image_shape, ds.n_classes).to(dev).eval() for i, c in enumerate(cfgs)}
    dsd = ds.to(dev)
    per_model = {m: throughput(net, dsd.x_test, dev, reps=5) for m, net in models.items()}
    bare = {m: bare_forward(net, dsd.x_test, dev, reps=5) for m, net in models.items()}
    per_setting = len(ds.x_test)
    ideal = sum(len(settings) * per_setting / tp for tp in per_model.values())
    ideal_bare = sum(len(settings) * per_setting / tp for tp in bare.values())
    with tempfile.TemporaryDirectory() as d:
        todo = {m: list(settings.setting_id) for m in models}
        run = StudyRun(None, Path(d))
        _sync(dev); t0 = time.perf_counter()
        evaluate_test_sets(ResultsStore(d), [split_test_set(dsd, *shifts)], settings, models, todo, dev, run,
                           progress=False, batch_size=batch_size); _sync(dev)
        grid = time.perf_counter() - t0
    images = len(models) * len(settings) * per_setting
    return dict(models=len(models), settings=len(settings), images_per_setting=per_setting, images=images, seconds=grid,
                images_per_s=images / grid, predict_logits_images_per_s=images / ideal, bare_forward_images_per_s=images / ideal_bare,
                of_predict_logits=ideal / grid, of_bare_forward=ideal_bare / grid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--study-dir", default=None)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    dev = get_device(args.device)

    # (a) one small CNN at 32×32 RGB
    cnn = build_model({"family": "cnn", "width": 32, "depth": 2}, (3, 32, 32), 10).to(dev).eval()
    n = 16384 if dev.type == "cpu" else 262144
    x = torch.rand(n, 3, 32, 32, device=dev)
    tp = throughput(cnn, x, dev)
    print(f"(a) small CNN (3 conv, width 32), 32x32 RGB, batch 4096, {dev.type}{' bf16' if dev.type == 'cuda' else ' fp32'}: "
          f"{tp:,.0f} images/s")
    if dev.type != "cuda":
        print("    H100 bf16 anchor (1.5 M images/s) not measured: no GPU on this machine")

    # (a') the default study's grid: every model × every setting
    g = grid_vs_forward(dev)
    print(f"    default digits grid ({g['models']} models x {g['settings']} settings x {g['images_per_setting']} images): "
          f"{g['images_per_s']:,.0f} images/s including shifts, metrics and record writes; "
          f"{g['of_predict_logits']:.0%} of the models' own throughput on one batch ({g['predict_logits_images_per_s']:,.0f} images/s), "
          f"{g['of_bare_forward']:.0%} of their bare forward ({g['bare_forward_images_per_s']:,.0f} images/s)")
    cfg = study_config()

    # (b) re-running a finished study
    work = Path(args.study_dir) if args.study_dir else Path(tempfile.mkdtemp())
    exe = str(Path(sys.executable).parent / "robstudy")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if not (work/"runs/digits/tables").exists():
        print(f"    running the default study first in {work} (trains the zoo) ...")
        subprocess.run([exe, "run", "progress=false"], cwd=work, check=True, env=env, capture_output=True)
    subprocess.run([exe, "run", "progress=false"], cwd=work, check=True, env=env, capture_output=True)  # consolidate once
    cwd = os.getcwd(); os.chdir(work)
    try:
        t0 = time.perf_counter(); r = run_study(cfg, progress=False); inproc = time.perf_counter() - t0
        cache = next((work/"runs/digits/.cache").glob("data-*.json"))
        saved = cache.read_bytes(); cache.unlink()
        t0 = time.perf_counter(); r_full = run_study(cfg, progress=False); full = time.perf_counter() - t0
    finally:
        os.chdir(cwd)
    t0 = time.perf_counter()
    cli = subprocess.run([exe, "run", "progress=false"], cwd=work, check=True, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import robstudy.cli, robstudy.evaluate"], check=True, env=env)
    imports = time.perf_counter() - t0
    print(f"(b) re-run of the finished default study: in process {inproc:.2f} s [{r.summary().split(': ')[1].split(' in ')[0]}]; "
          f"without the cached data fingerprint (loads data, re-consolidates) {full:.2f} s")
    print(f"    CLI `robstudy run` wall time {wall:.2f} s (python + torch/hydra/robstudy imports alone: {imports:.2f} s); "
          f"target <= 5 s -> {'met' if wall <= 5 else 'MISSED'}")
    print(f"    CLI said: {cli.stdout.strip()}")


if __name__ == "__main__":
    main()
