"""Studies on datasets on disk, through the engine (issue 17's figures).

    python benchmarks/study_on_disk.py throughput [--n 2048] [--batch 128] [--workers 2] [--rounds 3]
    python benchmarks/study_on_disk.py memory [--large 20000] [--small 2000] [--corruptions all|name,name] [--severity 3]

throughput: timm `resnet18` (10 outputs, random weights saved to a safetensors file and loaded as a `timm:` zoo entry)
evaluated by the engine (`evaluate_test_sets`: JPEG decode, resize 96 -> 64 px and crop in `--workers` DataLoader
workers, uint8 to float on the device, normalisation inside the loaded model, forward, streaming metrics, the eval
record written) on the clean setting of a class folder of 96-px JPEGs, against the same model's bare forward on
pre-decoded, pre-normalised 64-px tensors, same batch size, same torch threads. Best of `--rounds` for both, the rounds interleaved.

memory: `run_study` in a fresh subprocess per folder, the folder as the study's ID test set (`data.kind: image_folder`),
the `--corruptions` on top at one severity, a small pretrained zoo entry (timm's `test_resnet` with random weights,
preprocessed to 64 px): peak RSS (`getrusage` of the process, and of its largest DataLoader worker) for `--small` and
`--large` images, and the difference. The JPEG folders are generated once by benchmarks/sources.py's generator and
cached under $TMPDIR/robstudy-bench-jpeg96.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sources import jpeg_folder  # noqa: E402  (the same generated folders as the data-path benchmark)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _entry(arch: str, weights: Path, size: int) -> dict:
    return {"source": f"timm:{arch}", "weights": str(weights), "num_classes": 10,
            "preprocess": {"size": size, "crop": size, "mean": list(MEAN), "std": list(STD)}}


def _save_model(arch: str, path: Path):
    import timm, torch
    from safetensors.torch import save_file
    torch.manual_seed(0)
    net = timm.create_model(arch, pretrained=False, num_classes=10).eval()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, path)
    return net


def throughput(args):
    import torch
    from robstudy.evaluate import StudyRun, describe_test_set, evaluate_test_sets, settings_table, TestSet
    from robstudy.pretrained import load_model_entry
    from robstudy.sources import image_source
    from robstudy.store import ResultsStore
    root = jpeg_folder(Path(args.cache), args.n)
    work = Path(tempfile.mkdtemp())
    net = _save_model("resnet18", work / "r18.safetensors")
    entry = _entry("resnet18", work / "r18.safetensors", 64)
    lm = load_model_entry(entry, n_classes=10)
    src = image_source({"kind": "image_folder", "root": str(root)}, cache_dir=work / "cache")
    ts = TestSet("jpeg96", src, "id", None, [], (), 0, lm.preprocess, n_id_classes=10)
    settings = settings_table([describe_test_set(ts)])
    sid = settings.setting_id.iloc[0]
    # the bare forward's input: every image decoded and preprocessed once, normalised, in memory
    xs = torch.cat([x for x, _, _ in src.batches(args.batch, lm.preprocess)])
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (MEAN, STD))
    xn = (xs.float() / 255 - mean) / std
    def bare():
        with torch.inference_mode():
            for i in range(0, len(xn), args.batch): net(xn[i:i + args.batch])
    def engine():
        with tempfile.TemporaryDirectory(dir=work) as d:
            evaluate_test_sets(ResultsStore(d), [ts], settings, {"m": lm}, {"m": [sid]}, "cpu", StudyRun(None, Path(d)),
                               progress=False, batch_size=args.batch, workers=args.workers, preps={"m": lm.preprocess})
    # rounds interleaved (bare, engine, bare, ...), best of each: this VM's speed drifts by 20-30% over minutes
    fns, best = {"bare": bare, "engine": engine}, {"bare": float("inf"), "engine": float("inf")}
    for fn in fns.values(): fn()   # warm-up
    for _ in range(args.rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter(); fn(); best[name] = min(best[name], time.perf_counter() - t0)
    res = {name: len(xn) / t for name, t in best.items()}
    print(json.dumps({"figure": "engine (JPEG decode in workers, preprocess, forward, metrics, record) vs bare forward",
                      "model": "timm resnet18, random weights, 10 outputs", "size_px": 64, "images": len(xn), "batch": args.batch,
                      "workers": args.workers, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                      "bare_images_per_s": round(res["bare"], 1), "engine_images_per_s": round(res["engine"], 1),
                      "engine_of_bare": round(res["engine"] / res["bare"], 3), "load_average": os.getloadavg()}, indent=1))


def _memory_child(root: str, weights: str, corruptions: str, severity: float, batch: int, workers: int) -> dict:
    "Child process: one study on the folder; its peak RSS."
    from robstudy.corruptions import COMMON_CORRUPTIONS, HELD_OUT_CORRUPTIONS
    from robstudy.evaluate import run_study
    names = list(COMMON_CORRUPTIONS + HELD_OUT_CORRUPTIONS) if corruptions == "all" else corruptions.split(",")
    start_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as d:
        cfg = {"study": {"name": "mem", "seed": 0}, "device": "cpu",
               "data": {"name": "jpeg96", "kind": "image_folder", "root": root},
               "zoo": {"families": [], "models": [_entry("test_resnet", Path(weights), 64)]},
               "shifts": {"names": names, "severities": [severity], "seed": 0},
               "eval": {"batch_size": batch, "workers": workers}}
        t0 = time.perf_counter()
        r = run_study(cfg, folder=d, progress=False)
        secs = time.perf_counter() - t0
    return {"images": int(r.tables.evals.n.iloc[0]), "settings": len(r.tables.settings), "corruptions": len(names),
            "rss_after_imports_mb": start_kb / 1024, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "seconds": secs}


def memory(args):
    work = Path(tempfile.mkdtemp())
    _save_model("test_resnet", work / "tr.safetensors")
    out = {}
    for label, n in (("small", args.small), ("large", args.large)):
        root = jpeg_folder(Path(args.cache), n)
        code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from study_on_disk import _memory_child; "
                f"print(json.dumps(_memory_child({str(root)!r}, {str(work / 'tr.safetensors')!r}, {args.corruptions!r}, "
                f"{args.severity}, {args.batch}, {args.workers})))")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if p.returncode: sys.exit(p.stderr[-3000:])
        out[label] = json.loads(p.stdout.strip().splitlines()[-1])
        print(label, json.dumps(out[label]), flush=True)
    grow = out["large"]["peak_rss_mb"] - out["small"]["peak_rss_mb"]
    print(json.dumps({"figure": "peak RSS growth of a study, large vs small JPEG folder", "small_images": args.small,
                      "large_images": args.large, "corruptions": out["large"]["corruptions"],
                      "peak_rss_growth_mb": round(grow, 1), "target_mb": 150, "met": grow <= 150,
                      "large_as_float32_gb": round(args.large * 3 * 96 * 96 * 4 / 1e9, 2), "load_average": os.getloadavg()}, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["throughput", "memory"])
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--large", type=int, default=20000)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--corruptions", default="all")
    ap.add_argument("--severity", type=float, default=3)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "robstudy-bench-jpeg96"))
    args = ap.parse_args()
    throughput(args) if args.what == "throughput" else memory(args)


if __name__ == "__main__":
    main()
