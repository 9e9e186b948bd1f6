"""The GPU check: robstudy's GPU path verified and measured in one command of at most 4 minutes on one GPU.

    python benchmarks/gpu_check.py --wheels   # here, with a package index: fill .whl/ (make gpu-wheels)
    python benchmarks/gpu_check.py            # on the GPU machine, no index needed (make gpu-check)
    python benchmarks/gpu_check.py --dry      # the same steps on this CPU at tiny sizes (make gpu-check DRY=1; make test runs it)

A GPU machine lent for a short window has Python with torch, torchvision, timm, transformers and the scientific
stack, but none of hydra, papermill, nbconvert, jupyter or pytest, and reaches no package index. So `--wheels`
downloads here every wheel it lacks (CPython 3.12, manylinux x86-64, with their dependencies; hydra's
antlr4-python3-runtime is built from its source archive) into `.whl/`, with the anchor script `anchor_zoo.py` the
zoo benchmark compares against; the check installs what the machine lacks from there into `.gpu-site/` and puts it
on PYTHONPATH, and runs robstudy as `python -m robstudy`. Its steps, each in its own process with its own time budget
(plus what the steps before it left unused; a step that fails or runs out of time is recorded with its log's tail,
and with every thread's stack when it hung, and the next one runs):

  install            pip install --no-index --no-deps --target .gpu-site the wheels whose package the machine lacks
                     (or has at a version another wheel's requirement excludes)
  env                versions (python, torch, CUDA, cuDNN, GPU), the packages importable, the jupyter kernel and the
                     nbconvert template a report needs, `python -m robstudy --help`
  tests              pytest -m gpu tests/test_gpu.py on the device: shifts vs the CPU, fused vs one-by-one training,
                     bf16 vs fp32 evaluation, kill and resume, a report with device=...
  study              `python -m robstudy study device=...` on the default study, timed; its reports copied out
  bench_zoo          32 small ConvNets (32x32 RGB, bf16) trained fused vs the anchor's plain per-model loop
  bench_corruptions  the 19 corruptions x 5 severities on 10,000 32x32 images: images/s, vs the same on the CPU
  bench_eval         the default grid through the engine vs the models' bare forward
  bench_timm         a timm resnet50 (random weights, 224 px, bf16, channels-last) through the engine vs its bare forward

Everything goes to $OUT when set (else gpu-check/ in the repository, or --out): summary.json, rewritten after every
step (so a run cut short still says what it measured), logs/<step>.log, results/<step>.json, study/ (the study's
reports and tables). The dry run takes the device `cpu`, tiny sizes, runs every step in one process, installs nothing
(`--install` does: a rehearsal in an environment that lacks the packages), skips the anchor (minutes on a CPU: the zoo's
baseline is robstudy's own one-by-one loop there), renders no report and stands a small robstudy ResNet in for timm
when timm is missing. Its figures mean nothing; it exists so that this script cannot rot between GPU windows.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timezone
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
WHEELS = ROOT / ".whl"
SITE = ROOT / ".gpu-site"
ANCHOR_NAME = "anchor_zoo.py"

# what the GPU machine lacks (its own list: hydra-core omegaconf papermill nbclient nbconvert nbformat ipykernel
# jupyter_client; pytest for the tests), each with its dependencies
WHEEL_PACKAGES = ("hydra-core", "omegaconf", "papermill", "nbclient", "nbconvert", "nbformat", "ipykernel", "jupyter_client", "pytest")
SDIST_ONLY = {"antlr4-python3-runtime": "4.9.3"}   # hydra's parser runtime: a source archive only, built into a wheel here
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
WHEELS_LIMIT = 64 * 2**20                         # what one device call may carry

TOTAL_S = 240  # the whole check on a GPU
# step: (budget on a GPU in s, budget in the dry run in s); the GPU budgets add up to TOTAL_S
STEPS = {"install": (15, 120), "env": (20, 60), "tests": (70, 300), "study": (60, 180),
         "bench_zoo": (30, 120), "bench_corruptions": (15, 120), "bench_eval": (15, 120), "bench_timm": (15, 120)}
FIGURES = {  # name: (step, result key, target, 'min' (at least) or 'max' (at most), what it is)
    "fused_zoo_vs_loop": ("bench_zoo", "fused_vs_anchor_loop", 10.0, "min", "fused zoo training / the anchor's plain per-model loop"),
    "corruptions_images_per_s": ("bench_corruptions", "images_per_s", 1e6, "min", "19 corruptions x 5 severities, 32x32, images/s"),
    "engine_vs_bare_forward": ("bench_eval", "of_bare_forward", 0.8, "min", "default grid through the engine / the models' bare forward"),
    "default_study_seconds": ("study", "seconds", 60.0, "max", "python -m robstudy study on the default study, wall seconds"),
    "timm_engine_vs_bare_forward": ("bench_timm", "of_bare_forward", 0.8, "min", "resnet50 224 px through the engine / its bare forward"),
}


def _norm(name: str) -> str:
    "A distribution name in PEP 503 normal form."
    return re.sub(r"[-_.]+", "-", name).lower()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, obj):
    "Write JSON atomically (temp file + rename)."
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------- the wheels (here)
def _pip(*args, python=sys.executable):
    cmd = [python, "-m", "pip", *args]
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd)


def build_wheels(dest: Path = WHEELS, anchor: Path | None = None, python_version: str = "3.12") -> int:
    "Fill `dest` with every wheel the GPU machine lacks and the anchor script; fails when they pass WHEELS_LIMIT."
    from importlib import metadata
    anchor = Path(anchor) if anchor else ROOT.parent / "shared" / "bench" / ANCHOR_NAME
    if not anchor.is_file():
        sys.exit(f"--anchor {anchor}: no such file; expected the anchor's zoo script (ANCHOR=path/to/{ANCHOR_NAME} for make)")
    dest.mkdir(parents=True, exist_ok=True)
    for old in [*dest.glob("*.whl"), dest / ANCHOR_NAME]: old.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # the versions this environment runs (and its tests pass with) constrain what is downloaded
        pins = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                       if d.metadata["Name"] and "+" not in d.version and _norm(d.metadata["Name"]) != "robstudy"})
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("\n".join(pins) + "\n")
        for name, default in SDIST_ONLY.items():
            try: version = metadata.version(name)
            except metadata.PackageNotFoundError: version = default
            if _pip("wheel", "--no-deps", "-q", f"{name}=={version}", "-w", str(dest)).returncode:
                sys.exit(f"could not build the wheel of {name}=={version}")
        plat = [a for p in PLATFORMS for a in ("--platform", p)]
        cmd = ["download", "-q", "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp", *plat,
               "--find-links", str(dest), "-d", str(dest), *WHEEL_PACKAGES]
        if _pip(*cmd, "-c", str(constraints)).returncode:
            print("the pinned versions did not resolve for this platform; downloading the newest that do", flush=True)
            if _pip(*cmd).returncode: sys.exit("pip download failed")
    shutil.copy2(anchor, dest / ANCHOR_NAME)
    files = sorted(p for p in dest.iterdir() if p.is_file())
    total = sum(p.stat().st_size for p in files)
    for p in files: print(f"{p.stat().st_size / 2**20:8.2f} MiB  {p.name}")
    print(f"{len(files)} files in {dest}: {total / 2**20:.1f} MiB (limit {WHEELS_LIMIT / 2**20:.0f} MiB)")
    if total > WHEELS_LIMIT:
        print(f"{dest} holds {total / 2**20:.1f} MiB, over the {WHEELS_LIMIT / 2**20:.0f} MiB a device call carries", file=sys.stderr)
        return 1
    return 0


# ------------------------------------------------------------------------------------------------------ the steps
class Step:
    "What a step process knows: the options, and where its result goes (rewritten with every `save`; `skipped=reason` skips the step)."
    def __init__(self, name: str, a):
        self.name, self.dry, self.device, self.out, self.scratch = name, a.dry, a.device, Path(a.out), Path(a.scratch)
        self.wheels = Path(a.wheels_dir)
        self.deadline = time.monotonic() + float(a.budget)
        self.result = {}

    def save(self, **kv):
        self.result.update(kv)
        _write_json(self.out / "results" / f"{self.name}.json", self.result)

    def left(self) -> float:
        return self.deadline - time.monotonic()


def _bench(name: str):
    "A benchmarks/ script as a module (under a name that cannot shadow robstudy's modules)."
    spec = importlib.util.spec_from_file_location(f"robstudy_bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def _sync(device):
    import torch
    if torch.device(device).type == "cuda": torch.cuda.synchronize(device)


def _wheel_meta(path: Path) -> tuple:
    "(normal name, version, Requires-Dist lines) of a wheel, read from its METADATA."
    with zipfile.ZipFile(path) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        m = Parser().parsestr(z.read(meta).decode("utf-8", "replace"))
    return _norm(m["Name"]), m["Version"], m.get_all("Requires-Dist") or []


def _unzip_wheel(path: Path, target: Path):
    "Install a wheel by unpacking it (where pip is missing): the package, and its .data folders merged into `target`."
    with zipfile.ZipFile(path) as z: z.extractall(target)
    for data in target.glob("*.data"):
        for part in ("purelib", "platlib", "data"):
            if (data / part).is_dir(): shutil.copytree(data / part, target, dirs_exist_ok=True)
        shutil.rmtree(data)


def step_install(s: Step):
    "Install from .whl/ into .gpu-site/ what this machine lacks, and any package whose version here another needs newer."
    from importlib import metadata
    try: from packaging.requirements import Requirement
    except ImportError: from pip._vendor.packaging.requirements import Requirement
    wheels = {}
    for w in sorted(s.wheels.glob("*.whl")):
        name, version, reqs = _wheel_meta(w)
        wheels[name] = (w, version, reqs)
    if not wheels: raise SystemExit(f"{s.wheels} holds no wheels: run `make gpu-wheels` on a machine with a package index first")
    present = {}
    for d in metadata.distributions():
        if d.metadata["Name"]: present.setdefault(_norm(d.metadata["Name"]), d.version)
    need, why, unmet = {n for n in wheels if n not in present}, {}, []
    changed = True
    while changed:
        changed = False
        for n in sorted(need):
            for line in wheels[n][2]:
                r = Requirement(line)
                if r.marker and not r.marker.evaluate({"extra": ""}): continue
                m = _norm(r.name)
                if m in need: continue
                if m in present:
                    if r.specifier and not r.specifier.contains(present[m], prereleases=True):
                        if m in wheels: need.add(m); why[m] = f"{n} needs {line}; here {present[m]}"; changed = True
                        else: unmet.append(f"{n} needs {line}; this machine has {present[m]} and .whl/ has none")
                elif m not in wheels: unmet.append(f"{n} needs {line}: neither this machine nor .whl/ has it")
    shutil.rmtree(SITE, ignore_errors=True); SITE.mkdir()
    files = [str(wheels[n][0]) for n in sorted(need)]
    s.save(installed={n: wheels[n][1] for n in sorted(need)}, upgraded=why, kept={n: present[n] for n in sorted(set(wheels) - need)},
           unmet=sorted(set(unmet)), site=str(SITE))
    if importlib.util.find_spec("pip") is not None:
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-compile", "--disable-pip-version-check",
                            "-q", "--target", str(SITE), *files])
        if r.returncode: raise SystemExit(f"pip install failed ({r.returncode})")
        s.save(method="pip install --no-index --no-deps --target")
    else:
        for f in files: _unzip_wheel(Path(f), SITE)
        s.save(method="unzip (no pip here)")
    print(f"installed {len(need)} of {len(wheels)} wheels into {SITE}; kept this machine's {sorted(set(wheels) - need)}")
    if unmet: print("unmet requirements:", *sorted(set(unmet)), sep="\n  ")


def step_env(s: Step):
    "Versions, the packages a study and a report import, the jupyter kernel and nbconvert template, `python -m robstudy`."
    import platform
    import torch
    from importlib import metadata
    info = dict(python=platform.python_version(), executable=sys.executable, platform=platform.platform(), cpus=os.cpu_count(),
                torch=torch.__version__, torch_cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), capability=f"{p.major}.{p.minor}",
                    gpus=torch.cuda.device_count(), cudnn=torch.backends.cudnn.version(), bf16=torch.cuda.is_bf16_supported())
    s.save(**info)
    versions = {}
    for n in ("numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "statsmodels", "matplotlib", "seaborn", "safetensors", "timm",
              "torchvision", *WHEEL_PACKAGES, "antlr4-python3-runtime", "jupyter_core", "pyzmq", "tornado"):
        try: versions[n] = metadata.version(n)
        except metadata.PackageNotFoundError: versions[n] = None
    s.save(versions=versions)
    where = {}
    for mod in ("robstudy", "hydra", "omegaconf", "papermill", "nbclient", "nbconvert", "nbformat", "ipykernel", "jupyter_client", "zmq", "pytest"):
        m = __import__(mod); where[mod] = str(Path(m.__file__).parent)
    s.save(modules=where)
    from jupyter_client.kernelspec import KernelSpecManager
    spec = KernelSpecManager().get_kernel_spec("python3")
    s.save(kernel=spec.argv)
    import nbformat
    from robstudy.reports import render_html
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("the report template renders")])
    nbformat.write(nb, str(s.scratch / "template.ipynb"))
    html = render_html(s.scratch / "template.ipynb", s.scratch / "template.html").read_text()
    assert "the report template renders" in html
    s.save(template="robstudy_offline renders")
    if not s.dry:   # (the dry run's tests and study run `python -m robstudy` anyway)
        r = subprocess.run([sys.executable, "-m", "robstudy", "--help"], capture_output=True, text=True, cwd=s.scratch)
        s.save(python_m_robstudy=r.returncode)
        if r.returncode or "usage: robstudy" not in r.stdout: raise SystemExit(f"python -m robstudy --help failed:\n{r.stdout}\n{r.stderr}")
    if not s.dry and not torch.cuda.is_available(): raise SystemExit("no CUDA device here: the GPU check needs one (--dry runs it on the CPU)")


def step_tests(s: Step):
    "pytest -m gpu tests/test_gpu.py on the device; each test's outcome is saved as it finishes."
    import pytest
    tests = []
    class Recorder:
        def pytest_runtest_logreport(self, report):
            if report.when == "call" or report.outcome != "passed":
                tests.append(dict(test=report.nodeid.split("::", 1)[-1], outcome=report.outcome, when=report.when,
                                  seconds=round(report.duration, 2), message=report.longreprtext[-2000:] if report.failed else ""))
                s.save(tests=tests, n_passed=sum(t["outcome"] == "passed" for t in tests),
                       n_failed=sum(t["outcome"] == "failed" for t in tests), n_skipped=sum(t["outcome"] == "skipped" for t in tests))
    s.save(device=os.environ.get("ROBSTUDY_TEST_DEVICE"), size=os.environ.get("ROBSTUDY_TEST_SIZE"), tests=[])
    rc = pytest.main([str(ROOT / "tests" / "test_gpu.py"), "-m", "gpu", "-v", "-p", "no:cacheprovider", "-p", "no:faulthandler", "-rfE", "--durations=8",
                      "--basetemp", str(s.scratch / "pytest")], plugins=[Recorder()])
    s.save(exit_code=int(rc))
    if rc: raise SystemExit(f"pytest exited with {int(rc)}")


# the dry run's study: two models, two settings, no report notebook (a kernel costs seconds of imports on a small CPU;
# tests/test_cli.py renders reports on the CPU)
DRY_STUDY = ["zoo=tiny", "zoo.families=[logreg]", "zoo.epochs=[1]", "shifts.names=[gaussian_noise]", "shifts.severities=[1]",
             "report.notebooks=[]"]


def step_study(s: Step):
    "`python -m robstudy study device=...` in a fresh folder, timed; its reports and tables copied to the output."
    work = s.scratch / "study"; shutil.rmtree(work, ignore_errors=True); work.mkdir(parents=True)
    args = ["study", f"device={s.device}", "progress=false", *(DRY_STUDY if s.dry else [])]
    s.save(command="python -m robstudy " + " ".join(args), target_seconds=STEPS["study"][0])
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "robstudy", *args], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=max(1.0, s.left() - 8))   # leave time to copy what there is
    except subprocess.TimeoutExpired:
        p.kill(); out, _ = p.communicate()
    seconds = time.perf_counter() - t0
    if p.returncode == -signal.SIGKILL: s.save(killed_after_s=round(seconds, 1))   # ran out of its budget: no time to report
    print(out)
    lines = out.splitlines()
    summary = next((l for l in lines if " models × " in l and " settings: " in l), None)
    dest = s.out / "study"; shutil.rmtree(dest, ignore_errors=True)
    for src, name in ((work / "reports", "reports"), (work / "runs" / "digits" / "tables", "tables")):
        if src.exists(): shutil.copytree(src.resolve(), dest / name)
    records = {f.name.split(".")[0]: {k: r.get(k) for k in ("status", "seconds", "error")}
               for f in sorted((work / "reports" / "digits").glob("*.record.json")) for r in [json.loads(f.read_text())]}
    run = re.search(r"in ([\d.]+)s ->", summary or "")
    s.save(seconds=None if "killed_after_s" in s.result else round(seconds, 2), exit_code=p.returncode, summary=summary,
           run_seconds=float(run.group(1)) if run else None, reports=records, copied_to=str(dest))
    if p.returncode: raise SystemExit(f"python -m robstudy study exited with {p.returncode}")


def step_bench_zoo(s: Step):
    "32 small ConvNets fused (train_models(batched=True): one torch.func computation) vs the anchor's plain per-model loop."
    import torch
    from robstudy.zoo import train_models
    zoo = _bench("zoo")
    K, N, loop_k, width = (2, 32, 1, 4) if s.dry else (32, 10_000, 4, 32)
    anchor = next((p for p in (s.wheels / ANCHOR_NAME, zoo.ANCHOR) if p.is_file()), None)
    if s.dry: s.save(anchor={"skipped": "dry run: the anchor trains 2 epochs of 10,000 images per model, minutes on a CPU"})
    elif anchor is None: s.save(anchor={"skipped": f"no {ANCHOR_NAME} in {s.wheels} (make gpu-wheels copies it there)"})
    else:
        t = time.perf_counter()
        try:
            r = zoo.anchor_rates(anchor, K, timeout=max(5.0, s.left() - 12))   # (leaves time for the fused run)
            s.save(anchor=dict(K=K, sequential_images_per_s=r["sequential"], vmap_images_per_s=r["vmap"],
                               seconds=round(time.perf_counter() - t, 1), output=r["output"].strip().splitlines()))
        except (subprocess.SubprocessError, IndexError, AttributeError) as e:   # failed, timed out, or printed something else
            detail = getattr(e, "stderr", None) or getattr(e, "output", None) or ""
            s.save(anchor=dict(failed=f"{type(e).__name__}: {e}"[:500], output=str(detail)[-2000:]))
    g = torch.Generator().manual_seed(0)
    X, Y = torch.rand(N, 3, 32, 32, generator=g).to(s.device), torch.randint(0, 10, (N,), generator=g).to(s.device)
    cfgs = zoo.convnet_zoo(K, width)
    train_models(cfgs, X[:512], Y[:512], 10, device=s.device, batched=True)   # warm-up: kernels, allocator
    fused = zoo.images_per_second(lambda: train_models(cfgs, X, Y, 10, device=s.device, batched=True), K * N, s.device)
    s.save(models=K, width=width, images_per_model=N, epochs=1, batch_size=256, device=s.device, fused_images_per_s=fused)
    loop = zoo.images_per_second(lambda: train_models(cfgs[:loop_k], X, Y, 10, device=s.device, batched=False), loop_k * N, s.device)
    s.save(one_by_one_images_per_s=loop, one_by_one_models=loop_k, fused_vs_one_by_one=fused / loop)
    a = s.result.get("anchor", {})
    if "sequential_images_per_s" in a:
        s.save(fused_vs_anchor_loop=fused / a["sequential_images_per_s"], fused_vs_anchor_vmap=fused / a["vmap_images_per_s"],
               baseline="the anchor's plain per-model loop (anchor_zoo.py)")
    elif s.dry:   # robstudy's own one-by-one loop stands in for the anchor's
        s.save(fused_vs_anchor_loop=fused / loop, baseline="robstudy's one-by-one loop (dry run: no anchor run)")
    else: raise SystemExit(f"no anchor baseline: {a}")


def step_bench_corruptions(s: Step):
    "The 19 corruptions x 5 severities on 10,000 32x32 RGB images on the device (images/s), and on the CPU for a sample."
    import torch
    from robstudy.shifts import COMMON_CORRUPTIONS, HELD_OUT_CORRUPTIONS, get_shift
    sh = _bench("shifts")
    names = [*COMMON_CORRUPTIONS, *HELD_OUT_CORRUPTIONS]
    n, batch, cpu_n, sevs = (4, 4, 2, (3,)) if s.dry else (10_000, 10_000, 32, (1, 2, 3, 4, 5))
    x, src = sh.benchmark_images(n)
    x = x.to(s.device)
    for name in names: get_shift(name)(x[:64], 3)            # warm-up: kernels, the frost texture bank
    _sync(s.device)
    per = sh.corruption_seconds(x, names, batch, severities=sevs)
    total = sum(per.values())
    s.save(corruptions=len(names), severities=len(sevs), images=n, batch=batch, source=src, device=s.device, seconds=total,
           images_per_s=len(sevs) * n * len(names) / total, per_corruption_images_per_s={k: len(sevs) * n / v for k, v in per.items()})
    xc = x[:cpu_n].cpu()
    per_cpu = sh.corruption_seconds(xc, names, cpu_n, severities=sevs)
    cpu = len(sevs) * cpu_n * len(names) / sum(per_cpu.values())
    s.save(cpu_images=cpu_n, cpu_threads=torch.get_num_threads(), cpu_images_per_s=cpu, device_vs_cpu=s.result["images_per_s"] / cpu,
           baseline=f"the same corruptions on this machine's CPU ({cpu_n} images)")


def step_bench_eval(s: Step):
    "The default study's grid (untrained zoo × every setting) through the engine vs its models' bare forward."
    ev = _bench("evaluate")
    overrides = ["zoo=tiny", "zoo.families=[logreg]", "zoo.epochs=[1]", "shifts.names=[gaussian_noise]", "shifts.severities=[1]"] if s.dry else []
    s.save(device=s.device, overrides=overrides, **ev.grid_vs_forward(s.device, overrides))


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def step_bench_timm(s: Step):
    "A timm resnet50 (random weights saved to a file, 224 px, bf16, channels-last) as a `timm:` zoo entry through the engine vs its bare forward."
    import torch
    from robstudy.data import DatasetSplit
    from robstudy.evaluate import StudyRun, build_settings, evaluate_test_sets, split_test_set
    from robstudy.store import ResultsStore
    ev = _bench("evaluate")
    if importlib.util.find_spec("timm") is None:
        s.save(skipped="timm is not installed on this machine"); return
    import timm
    from safetensors.torch import save_file
    from robstudy.pretrained import load_model_entry
    arch, size, n, bs = ("resnet18", 32, 16, 16) if s.dry else ("resnet50", 224, 1024, 256)
    torch.manual_seed(0)
    net = timm.create_model(arch, pretrained=False).eval()
    weights = s.scratch / f"{arch}.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, weights)
    entry = {"source": f"timm:{arch}", "weights": str(weights), "preprocess": {"size": size, "crop": size}}
    lm = load_model_entry(entry, n_classes=1000, device=s.device)   # channels-last on CUDA; normalisation inside
    cuda = torch.device(s.device).type == "cuda"
    x = torch.rand(n, 3, size, size, device=s.device)          # made on the device: 600 MB at 224 px
    y = torch.randint(0, 1000, (n,), device=s.device)
    s.save(model=f"timm {arch}, random weights, loaded as a timm: zoo entry", images=n, size=size, batch_size=bs, device=s.device,
           precision="bf16 autocast" if cuda else "fp32", memory_format="channels_last" if cuda else "contiguous")
    bare_net = net.to(s.device).to(memory_format=torch.channels_last) if cuda else net
    mean, std = (torch.tensor(v, device=s.device).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    xn = ((x - mean) / std).contiguous(memory_format=torch.channels_last if cuda else torch.contiguous_format)
    bare = ev.bare_forward(bare_net, xn, s.device, batch_size=bs, reps=3)   # the bare forward gets its input ready-made
    s.save(bare_forward_images_per_s=bare)
    ds = DatasetSplit("random-images", x[:0], y[:0], x, y, [str(i) for i in range(1000)])
    settings = build_settings(ds, [], ())
    sid = settings.setting_id.iloc[0]
    ts = split_test_set(ds)
    def engine():
        with tempfile.TemporaryDirectory(dir=s.scratch) as d:
            evaluate_test_sets(ResultsStore(d), [ts], settings, {"m": lm}, {"m": [sid]}, torch.device(s.device),
                               StudyRun(None, Path(d)), progress=False, batch_size=bs)
            _sync(s.device)
    engine()   # warm-up
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter(); engine(); best = min(best, time.perf_counter() - t0)
    s.save(engine_images_per_s=n / best, of_bare_forward=(n / best) / bare,
           engine="robstudy.evaluate.evaluate_test_sets on the loaded entry: batches from the device, forward, streaming metrics, the record")


STEP_FUNCTIONS = {"install": step_install, "env": step_env, "tests": step_tests, "study": step_study, "bench_zoo": step_bench_zoo,
                  "bench_corruptions": step_bench_corruptions, "bench_eval": step_bench_eval, "bench_timm": step_bench_timm}


def _log_to(path: Path):
    "Send this process's stdout and stderr (its children's too) to `path`."
    sys.stdout.flush(); sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1); os.dup2(fd, 2); os.close(fd)


def run_steps(names: list, a) -> int:
    "Run steps one after the other in this process, each into logs/<step>.log, leaving results/<step>.status.json."
    import faulthandler
    import traceback
    failed, deadline = 0, time.monotonic() + float(a.budget)
    for name in names:
        _log_to(Path(a.out) / "logs" / f"{name}.log")
        # where it hangs: every thread's stack into the log just before the driver kills this process at its budget
        faulthandler.dump_traceback_later(max(1.0, deadline - time.monotonic() - 2.0), exit=False)
        s, t0 = Step(name, a), time.monotonic()
        try:
            STEP_FUNCTIONS[name](s)
            status, error = ("skipped" if s.result.get("skipped") else "ok"), None
        except BaseException as e:   # (SystemExit too: a step says why it failed by raising it)
            if isinstance(e, KeyboardInterrupt): raise
            traceback.print_exc()
            status, error = "failed", f"{type(e).__name__}: {e}"[-2000:]
        print(f"{name}: {status} in {time.monotonic() - t0:.1f} s", flush=True)
        faulthandler.cancel_dump_traceback_later()
        _write_json(Path(a.out) / "results" / f"{name}.status.json", dict(status=status, error=error, seconds=round(time.monotonic() - t0, 1)))
        failed += status == "failed"
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------------------- the driver
def _figures(steps: dict, dry: bool) -> dict:
    out = {}
    for name, (step, key, target, sense, what) in FIGURES.items():
        v = (steps.get(step, {}).get("result") or {}).get(key)
        met = None if v is None or dry else (v >= target if sense == "min" else v <= target)
        out[name] = dict(value=v, target=(">= " if sense == "min" else "<= ") + f"{target:g}", met=met, what=what)
    return out


def _tail(path: Path, chars: int) -> str:
    try: return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError: return ""


def _record(rec: dict, name: str, out: Path, rc, budget: float, started: float):
    "Fill a step's summary record from its status file, result and log (a step without a status file was killed or crashed)."
    st = out / "results" / f"{name}.status.json"
    res, log = out / "results" / f"{name}.json", out / "logs" / f"{name}.log"
    rec["result"] = json.loads(res.read_text()) if res.exists() else None
    if st.exists():
        status = json.loads(st.read_text())
        rec.update(status=status["status"], seconds=status["seconds"])
        if status.get("error"): rec["error"] = status["error"]
    elif rc is None: rec.update(status="timeout", reason=f"killed at its budget of {budget:.0f} s", seconds=round(time.monotonic() - started, 1))
    else: rec.update(status="failed", reason=f"its process ended with exit code {rc} before the step finished",
                     seconds=round(time.monotonic() - started, 1))
    if (rec["result"] or {}).get("skipped"): rec["reason"] = rec["result"]["skipped"]
    rec["log"] = str(log.relative_to(out)) if log.exists() else None
    rec["log_tail"] = _tail(log, 600 if rec["status"] in ("ok", "skipped") else 4000)


def _step_env(a, scratch: Path, installed: bool) -> dict:
    "The environment of a step's process: .gpu-site and the repository on PYTHONPATH, the test device, scratch dirs."
    env = dict(os.environ)
    env.pop("ROBSTUDY_KILL_AT", None)
    paths = ([str(SITE)] if installed else []) + [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if installed:
        env["JUPYTER_PATH"] = os.pathsep.join([str(SITE / "share" / "jupyter")] + ([env["JUPYTER_PATH"]] if env.get("JUPYTER_PATH") else []))
        env["PATH"] = os.pathsep.join([str(SITE / "bin"), env.get("PATH", "")])
    for var, sub in (("IPYTHONDIR", "ipython"), ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"), ("MPLCONFIGDIR", "matplotlib")):
        env[var] = str(scratch / sub)
    env.update(ROBSTUDY_TEST_DEVICE=a.device, ROBSTUDY_TEST_SIZE="tiny" if a.dry else "full", MPLBACKEND="Agg", JUPYTER_PLATFORM_DIRS="1",
               PYTHONUNBUFFERED="1")
    if a.dry: env["OMP_NUM_THREADS"] = "1"   # tiny work on a small shared CPU: threads would only wait for each other
    return env


def run_check(a) -> int:
    "Run every step in its own process within its budget, rewriting summary.json after each; returns 0 when every step is ok."
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    for old in ("logs", "results", "study"): shutil.rmtree(out / old, ignore_errors=True)
    (out / "logs").mkdir(); (out / "results").mkdir()
    scratch = Path(tempfile.mkdtemp(prefix="robstudy-gpu-check-"))
    t_start = time.monotonic()
    total = a.total or (sum(dry for _, dry in STEPS.values()) if a.dry else TOTAL_S)
    names = [n for n in STEPS if not a.only or n in a.only.split(",")]
    summary = dict(started=_now(), dry=a.dry, device=a.device, out=str(out), total_budget_s=total, python=sys.executable,
                   steps={n: dict(status="pending", budget_s=STEPS[n][1 if a.dry else 0]) for n in names})
    def write():
        summary.update(figures=_figures(summary["steps"], a.dry), seconds=round(time.monotonic() - t_start, 1))
        _write_json(out / "summary.json", summary)
    write()
    installed = SITE.is_dir() and (a.install or not a.dry)    # (--no-install: what an earlier run installed)
    if "install" in names and ((a.dry and not a.install) or a.no_install):
        summary["steps"]["install"].update(status="skipped", reason="--no-install" if a.no_install else "dry run: this environment has every package")
        names.remove("install"); write()
    # on a GPU each step runs in its own process (a CUDA fault or a hang ends only that step); the dry run runs them all
    # in one (each process costs seconds of imports on a small CPU)
    groups = [[n] for n in names] if not a.dry else [[n] for n in names if n == "install"] + [[n for n in names if n != "install"]]
    groups = [g for g in groups if g]
    for k, group in enumerate(groups):
        left = total - (time.monotonic() - t_start)
        later = sum(summary["steps"][n]["budget_s"] for g in groups[k + 1:] for n in g)
        # its own budget, and what the steps before it left unused (the later steps' budgets stay reserved)
        budget = min(max(sum(summary["steps"][n]["budget_s"] for n in group), left - later), left)
        if budget < 3:
            for n in group: summary["steps"][n].update(status="skipped", reason=f"out of time ({left:.0f} s of the {total:.0f} s left)")
            write(); continue
        for n in group: summary["steps"][n]["status"] = "waiting"
        summary["steps"][group[0]]["status"] = "running"
        if len(group) == 1: summary["steps"][group[0]]["budget_s"] = round(budget, 1)
        write()
        print(f"[{time.monotonic() - t_start:6.1f}s] {','.join(group)} (budget {budget:.0f} s) ...", flush=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--step", ",".join(group), "--out", str(out), "--scratch", str(scratch),
               "--device", a.device, "--budget", str(budget), "--wheels-dir", a.wheels_dir, *(["--dry"] if a.dry else [])]
        env = _step_env(a, scratch, installed and group != ["install"])
        t0, rc, seen = time.monotonic(), None, set()
        t_step = t0
        with open(out / "logs" / f"process-{group[0]}.log", "w") as f:
            p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
            while rc is None:
                try: rc = p.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    if time.monotonic() - t0 > budget:
                        os.killpg(p.pid, signal.SIGKILL); p.wait(); break
                new = [n for n in group if n not in seen and (out / "results" / f"{n}.status.json").exists()]
                for n in new:   # a step of the group finished: record it now
                    seen.add(n); _record(summary["steps"][n], n, out, rc, budget, t_step); t_step = time.monotonic()
                    nxt = next((m for m in group if m not in seen), None)
                    if nxt: summary["steps"][nxt]["status"] = "running"
                    write()
                    print(f"[{time.monotonic() - t_start:6.1f}s] {n}: {summary['steps'][n]['status']} in {summary['steps'][n]['seconds']} s", flush=True)
        try:
            for n in group:     # what the process left unfinished (killed at its budget, or crashed)
                if n not in seen:
                    _record(summary["steps"][n], n, out, rc, budget, t_step)
                    print(f"[{time.monotonic() - t_start:6.1f}s] {n}: {summary['steps'][n]['status']}", flush=True)
        finally:
            if (out / "logs" / f"process-{group[0]}.log").stat().st_size == 0: (out / "logs" / f"process-{group[0]}.log").unlink()
        if "install" in group: installed = SITE.is_dir()
        write()
    summary["finished"] = _now(); write()
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nGPU check{' (dry run: device cpu, tiny sizes; figures mean nothing)' if a.dry else ''}: {out / 'summary.json'}")
    for n, r in summary["steps"].items():
        print(f"  {n:18s} {r['status']:8s} {r.get('seconds', '')!s:>6} s  {r.get('reason', '')}")
    for n, f in summary["figures"].items():
        v = f["value"]
        print(f"  {n:28s} {('%.3g' % v) if isinstance(v, (int, float)) else v!s:>10}  target {f['target']:>8}  met {f['met']}")
    failed = [n for n, r in summary["steps"].items() if r["status"] not in ("ok", "skipped")]
    for n in failed: print(f"\n--- {n} ({summary['steps'][n]['status']}): the end of {summary['steps'][n]['log']}\n{summary['steps'][n]['log_tail'][-2500:]}")
    return 1 if failed else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheels", action="store_true", help="fill .whl/ with the wheels the GPU machine lacks and the anchor script")
    ap.add_argument("--anchor", default=None, help=f"with --wheels: the anchor script (default ../shared/bench/{ANCHOR_NAME})")
    ap.add_argument("--python-version", default="3.12", help="with --wheels: the GPU machine's Python (default 3.12)")
    ap.add_argument("--wheels-dir", default=str(WHEELS), help="the wheels folder (default .whl/)")
    ap.add_argument("--dry", action="store_true", help="device cpu, tiny sizes, no install")
    ap.add_argument("--device", default=None, help="the device (default cuda; cpu with --dry)")
    ap.add_argument("--out", default=None, help="output folder (default $OUT, else gpu-check/)")
    ap.add_argument("--only", default="", help="comma-separated steps to run (default all): " + ",".join(STEPS))
    ap.add_argument("--total", type=float, default=0, help="overall time limit in s (default 240 on a GPU)")
    ap.add_argument("--no-install", action="store_true", help="skip the install step (.gpu-site/ has the packages from an earlier run)")
    ap.add_argument("--install", action="store_true", help="with --dry: install from the wheels all the same (a rehearsal of the GPU machine)")
    ap.add_argument("--step", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--scratch", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--budget", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.wheels: return build_wheels(Path(a.wheels_dir), a.anchor, a.python_version)
    a.device = a.device or ("cpu" if a.dry else "cuda")
    a.out = a.out or os.environ.get("OUT") or str(ROOT / "gpu-check")
    bad = [n for n in a.only.split(",") if n and n not in STEPS]
    if bad: ap.error(f"--only: unknown step(s) {bad}; expected some of {list(STEPS)}")
    if a.step: return run_steps(a.step.split(","), a)
    return run_check(a)


if __name__ == "__main__":
    sys.exit(main())
