"""The GPU path on its device: every shift equals its CPU result, fused training equals one-by-one training,
bf16 evaluation agrees with fp32, a run killed and resumed gives the same tables, a report executes with device=...

The device is $ROBSTUDY_TEST_DEVICE (default: cuda when there is a GPU). Without a GPU and without that variable the
tests are skipped: on a CPU they run inside the GPU check's dry run (`make gpu-check DRY=1`, which `make test` runs
through tests/test_gpu_check.py), so they run once. $ROBSTUDY_TEST_SIZE picks the sizes: `full` (the default on a GPU:
the default zoo, every severity) or `tiny` (the default elsewhere: a few images, models and severities, and no report,
which tests/test_cli.py renders on the CPU)."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from robstudy.shifts import SHIFTS, get_shift

ROOT = Path(__file__).resolve().parents[1]
DEVICE = os.environ.get("ROBSTUDY_TEST_DEVICE") or ("cuda" if torch.cuda.is_available() else None)
SIZE = os.environ.get("ROBSTUDY_TEST_SIZE") or ("full" if DEVICE and DEVICE.startswith("cuda") else "tiny")
if SIZE not in ("full", "tiny"):
    raise ValueError(f"ROBSTUDY_TEST_SIZE={SIZE!r}; expected 'full' or 'tiny'")
FULL = SIZE == "full"
CUDA = bool(DEVICE) and torch.device(DEVICE).type == "cuda"

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    DEVICE is None, reason="no GPU here: these tests run on CUDA, or on the CPU inside `make gpu-check DRY=1` (part of make test)")]


def _images(n, size, rgb=True):
    "n real digits from the test split, resized to size×size, coloured when `rgb`."
    from robstudy.data import colourize, load_digits_split
    x = load_digits_split().x_test[:n]
    if rgb: return colourize(x, size=size, seed=0)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


# (images, severities) per check: small RGB and grey images at every severity, and larger ones that take the
# ImageNet-C table (not frost: its texture is drawn on the CPU for every device, and costs seconds at that size)
if FULL: SHIFT_CASES = [(dict(n=16, size=32), (1, 2, 3, 4, 5)), (dict(n=8, size=28, rgb=False), (1, 3, 5)), (dict(n=2, size=72), (5,))]
else: SHIFT_CASES = [(dict(n=4, size=16), (2, 5))]
_CACHE = {}


def _case_images(spec):
    key = tuple(sorted(spec.items()))
    if key not in _CACHE: _CACHE[key] = _images(**spec)
    return _CACHE[key]


def _gap(a, b):
    "Mean absolute difference, and the fraction of values more than one 8-bit level apart."
    d = (a.float() - b.float()).abs()
    return d.mean().item(), (d > 1 / 255).float().mean().item()


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_shift_on_the_device_equals_the_cpu(name):
    sh = get_shift(name)
    for spec, severities in SHIFT_CASES:
        if spec["size"] > sh.max_small and (sh.large_table is None or name == "frost"): continue
        x = _case_images(spec)
        index = torch.arange(1000, 1000 + len(x))              # global indices past 0: the counter RNG's offsets
        for sev in severities:
            ref = sh(x, sev, seed=7, index=index)
            got = sh(x.to(DEVICE), sev, seed=7, index=index.to(DEVICE))
            assert got.device.type == torch.device(DEVICE).type, f"{name} moved the images off {DEVICE} (to {got.device})"
            assert got.shape == ref.shape and got.dtype == ref.dtype
            mean, far = _gap(got.cpu(), ref)
            assert mean <= 2e-3 and far <= 0.01, (f"{name} severity {sev} on {spec}: {DEVICE} differs from the CPU by "
                                                   f"{mean:.2e} on average, {far:.1%} of values by more than 1/255")


def _rel(a, b):
    "Relative L2 distance of two models' weights, all tensors flattened together."
    va = torch.cat([t.detach().float().flatten().cpu() for t in a.state_dict().values()])
    vb = torch.cat([t.detach().float().flatten().cpu() for t in b.state_dict().values()])
    return ((va - vb).norm() / vb.norm().clamp_min(1e-12)).item()


def test_fused_training_equals_one_by_one():
    from robstudy.data import colourize, load_digits_split
    from robstudy.zoo import train_models
    ds = load_digits_split()
    fixed = dict(recipe="erm", lr=0.01, batch_size=64, weight_decay=0.0)
    families = [("cnn", dict(width=8, depth=1)), ("mlp", dict(width=16, depth=1))]
    runs = [(2, 0.5, 0), (1, 1.0, 1), (3, 0.3, 2)] if FULL else [(1, 0.2, 0), (1, 0.1, 1)]
    if FULL: families += [("logreg", dict(width=None, depth=0)), ("convnet", dict(width=8, depth=2))]
    # on CUDA both paths train in bf16 (in different kernels: grouped vs single convolutions), so they agree
    # to bf16 rounding carried through the steps; on the CPU both are float32
    tol, agree = (0.05, 0.95) if CUDA else (1e-3, 0.99)
    for fam, extra in families:
        x, xt = (ds.x_train, ds.x_test) if fam != "convnet" else (colourize(ds.x_train, size=16), colourize(ds.x_test, size=16))
        cfgs = [dict(family=fam, epochs=e, train_fraction=f, seed=s, **fixed, **extra) for e, f, s in runs]
        fused = train_models(cfgs, x, ds.y_train, 10, device=DEVICE, batched=True)
        alone = train_models(cfgs, x, ds.y_train, 10, device=DEVICE, batched=False)
        for c, (a, ia), (b, ib) in zip(cfgs, fused, alone):
            assert ia["batched"] == len(cfgs) and ib["batched"] == 1, (fam, ia["batched"], ib["batched"])
            assert next(a.parameters()).device.type == torch.device(DEVICE).type
            rel = _rel(a, b)
            with torch.no_grad():
                pa, pb = a(xt.to(DEVICE)).argmax(1), b(xt.to(DEVICE)).argmax(1)
            same = (pa == pb).float().mean().item()
            assert rel <= tol and same >= agree, (f"{fam} seed {c['seed']}: fused vs one by one on {DEVICE}: weights differ by "
                                                  f"{rel:.2e} (relative L2, limit {tol}), predictions agree on {same:.1%} (limit {agree:.0%})")


def _study_config(overrides):
    from robstudy.config import compose
    return compose(overrides)


def test_bf16_evaluation_agrees_with_fp32():
    from robstudy.datasets import load_dataset
    from robstudy.evaluate import build_settings, predict_logits, setting_images
    from robstudy.zoo import train_models, zoo_grid
    cfg = _study_config(["zoo=digits"] if FULL else ["zoo=tiny", "zoo.epochs=[1]", "zoo.train_fractions=[1.0]", "shifts.severities=[1,5]"])
    ds = load_dataset(cfg["data"]["name"], **{k: v for k, v in cfg["data"].items() if k != "name"}).to(DEVICE)
    sh = cfg["shifts"]
    settings = build_settings(ds, sh["names"], tuple(sh["severities"]), sh["seed"])
    cfgs = zoo_grid(cfg["zoo"])
    models = [m for m, _ in train_models(cfgs, ds.x_train, ds.y_train, ds.n_classes, device=DEVICE)]
    gaps, differ = [], 0
    for _, s in settings.iterrows():
        x = setting_images(ds, s)
        for i, m in enumerate(models):
            l32 = predict_logits(m, x, device=DEVICE, amp=False, on_device=True)
            l16 = predict_logits(m, x, device=DEVICE, amp=True, on_device=True)
            differ += not torch.equal(l16, l32)
            acc = lambda logits: (logits.argmax(1) == ds.y_test).float().mean().item() * 100
            gaps.append((abs(acc(l16) - acc(l32)), cfgs[i]["family"], i, f"{s['shift']}@{s['severity']:g}"))
    assert len(gaps) == len(models) * len(settings)
    worst, mean = max(gaps), sum(g for g, *_ in gaps) / len(gaps)
    assert worst[0] <= 1.0 and mean <= 0.2, (f"bf16 vs fp32 on {DEVICE}: worst gap {worst[0]:.2f} points (model {worst[2]}, "
                                             f"{worst[1]}, {worst[3]}), mean {mean:.3f} points over {len(gaps)} (model, setting)")
    if CUDA: assert differ > 0, "amp=True gave the very logits of fp32 on every (model, setting): bf16 autocast is not on"


# a small study on the device: 8 models × 5 settings (tiny: 2 × 2)
if FULL: STUDY, N_EVALS = ["zoo=tiny", "test_sets=[]", "shifts.names=[gaussian_noise,contrast]", "shifts.severities=[1,3]"], 40
else: STUDY, N_EVALS = ["zoo=tiny", "test_sets=[]", "zoo.families=[logreg]", "zoo.epochs=[1]", "shifts.names=[contrast]", "shifts.severities=[2]"], 4
STUDY += ["study.name=gpu", f"device={DEVICE}", "progress=false"]


def _robstudy(*args, cwd, kill_at=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("ROBSTUDY_KILL_AT", None)
    if kill_at: env["ROBSTUDY_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "robstudy", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _tables(folder):
    from robstudy.tables import Tables
    return Tables.load(Path(folder) / "runs/gpu/tables")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    "The folder of an uninterrupted run of the small study (run in this process: the CLI runs below compose the same config)."
    from robstudy.evaluate import run_study
    d = tmp_path_factory.mktemp("reference")
    run = run_study(_study_config(STUDY), folder=d / "runs/gpu", progress=False)
    assert (run.trained, run.evaluated) == (len(run.tables.models), N_EVALS), run.summary()
    return d


# killed after the 3rd eval record; on a GPU also after the 3rd checkpoint (a fused group half saved: its other
# member retrains alone on resume)
@pytest.mark.parametrize("kill_at", ["eval:3", *(["train:3"] if FULL else [])])
def test_killed_and_resumed_gives_the_same_tables(reference, tmp_path, kill_at):
    r = _robstudy("run", *STUDY, cwd=tmp_path, kill_at=kill_at)
    assert r.returncode == -signal.SIGKILL, f"expected the run to kill itself at {kill_at}: rc {r.returncode}\n{r.stderr}"
    r = _robstudy("run", *STUDY, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    a, b = _tables(tmp_path), _tables(reference)
    pd.testing.assert_frame_equal(a.settings, b.settings)
    pd.testing.assert_frame_equal(a.models.drop(columns="train_seconds"), b.models.drop(columns="train_seconds"))
    pd.testing.assert_frame_equal(a.evals, b.evals)


@pytest.mark.skipif(not FULL, reason="tiny (a CPU): tests/test_cli.py renders a report through `robstudy report` on the CPU; "
                                      "a kernel costs the dry run seconds")
def test_report_executes_on_the_device(reference):
    "The shift gallery report applies the study's shifts on the configured device, in its papermill kernel."
    r = _robstudy("report", *STUDY, "report.notebooks=[shift_gallery]", cwd=reference)
    assert r.returncode == 0, r.stdout + r.stderr
    out = reference / "reports/gpu"
    rec = json.loads((out / "shift_gallery.record.json").read_text())
    assert rec["status"] == "ok" and (out / "shift_gallery.html").stat().st_size > 10_000
    assert f"Shifts run on `{DEVICE}`" in (out / "shift_gallery.ipynb").read_text()
    assert rec["provenance"]["device"] == DEVICE and rec["parameters"]["config"]["device"] == DEVICE
    if CUDA: assert rec["provenance"]["gpu"], rec["provenance"]
