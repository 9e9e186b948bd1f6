"""Streamed test sets (robstudy.sources): peak memory against the number of images, and JPEG decode throughput.

Issue 17's memory figure: evaluating a generated 20,000-image, 96-px JPEG folder (about 550 MB as uint8, 2.2 GB as
float32) with 19 corruptions grows peak RSS by at most 150 MB over evaluating 2,000 images. Without the engine, this
measures the data path it will use: in a fresh subprocess for each folder, an `image_folder` source is fingerprinted
(every file hashed, in a fresh manifest cache) and every batch is streamed with 2 DataLoader workers, moved to float
(`as_float_images`), passed through all 19 corruptions (the 15 common + 4 held-out, `get_shift(name)(x, severity,
seed, index=idx)`) and folded into a running mean (a model-free sink). Peak RSS is `getrusage` ru_maxrss of the process
(and of its largest worker). It prints both and the difference, then decode throughput (images/s) of the large folder
with workers=0 and workers=2 (native 96 px, and resized to 64 px), and the load average around each measurement.

The generated folders (class folders of 96×96 JPEGs, quality 90) are cached under $TMPDIR/robstudy-bench-jpeg96 and
reused. Applying 19 corruptions to 22,000 images on a 2-core CPU takes about an hour.

    python benchmarks/sources.py [--large 20000] [--small 2000] [--batch 250] [--severity 3] [--threads 2]
                                 [--workers 2] [--corruptions all|name,name] [--cache DIR] [--skip-memory] [--skip-decode]
"""
import argparse, json, os, resource, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

SIZE, CLASSES = 96, 10


def _write_images(args):
    "Worker: write JPEGs `start..stop` of a folder (smooth random colour fields with texture, as natural-ish images)."
    root, start, stop, seed = args
    from PIL import Image
    rng = np.random.default_rng([seed, start])
    for i in range(start, stop):
        low = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        im = Image.fromarray(low).resize((SIZE, SIZE), Image.BICUBIC)
        a = np.asarray(im).astype(np.int16) + rng.integers(-12, 13, (SIZE, SIZE, 3))
        Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(root / f"c{i % CLASSES}" / f"img_{i:06d}.jpg", quality=90)


def jpeg_folder(cache: Path, n: int, seed: int = 0) -> Path:
    "A class-folder tree of n 96-px JPEGs under cache/<n>, generated once (a .complete marker is written last)."
    root = cache / f"{n}"
    if (root / ".complete").exists(): return root
    from concurrent.futures import ProcessPoolExecutor
    for c in range(CLASSES): (root / f"c{c}").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    chunks = [(root, s, min(s + 1000, n), seed) for s in range(0, n, 1000)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool: list(pool.map(_write_images, chunks))
    (root / ".complete").write_text(str(n))
    print(f"generated {n} JPEGs in {root} in {time.perf_counter() - t0:.0f} s", flush=True)
    return root


def stream(root: str, batch: int, workers: int, severity: float, threads: int, corruptions: str) -> dict:
    "Child process: fingerprint, stream, corrupt and sink every batch of the folder; peak RSS and counts."
    import torch
    torch.set_num_threads(threads)
    from robstudy.corruptions import COMMON_CORRUPTIONS, HELD_OUT_CORRUPTIONS
    from robstudy.shifts import get_shift
    from robstudy.sources import as_float_images, image_source
    names = list(COMMON_CORRUPTIONS + HELD_OUT_CORRUPTIONS) if corruptions == "all" else corruptions.split(",")
    shifts = [get_shift(n) for n in names]
    start_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        src = image_source({"kind": "image_folder", "root": root}, cache_dir=cache)
        fp = src.fingerprint()
    total, count, images = 0.0, 0, 0
    with torch.inference_mode():
        for x, y, idx in src.batches(batch, workers=workers):
            xf = as_float_images(x)
            for s in shifts:
                out = s(xf, severity, seed=0, index=idx)
                total += float(out.sum(dtype=torch.float64)); count += out.numel()
            images += len(x)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    worker_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"images": images, "corruptions": len(shifts), "fingerprint": fp, "mean": total / max(count, 1),
            "rss_after_imports_mb": start_kb / 1024, "peak_rss_mb": peak_kb / 1024, "worker_peak_rss_mb": worker_kb / 1024,
            "seconds": time.perf_counter() - t0}


def measure(root: Path, a) -> dict:
    "Run `stream` in a fresh interpreter (its peak RSS is its own)."
    cmd = [sys.executable, __file__, "--child", str(root), "--batch", str(a.batch), "--workers", str(a.workers),
           "--severity", str(a.severity), "--threads", str(a.threads), "--corruptions", a.corruptions]
    load0 = os.getloadavg()[0]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode: raise SystemExit(f"child failed:\n{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["load"] = (load0, os.getloadavg()[0])
    return r


def decode_rate(root: Path, workers: int, batch: int, prep=None) -> float:
    "Images/s reading every image of the folder as uint8 batches (no shift, no model)."
    from robstudy.sources import image_source
    src = image_source({"kind": "image_folder", "root": str(root)}, cache_dir=tempfile.mkdtemp())
    t0 = time.perf_counter(); n = 0
    for x, _, _ in src.batches(batch, prep, workers=workers): n += len(x)
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--large", type=int, default=20_000); ap.add_argument("--small", type=int, default=2_000)
    ap.add_argument("--batch", type=int, default=250); ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--severity", type=float, default=3); ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corruptions", default="all")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "robstudy-bench-jpeg96"))
    ap.add_argument("--skip-memory", action="store_true"); ap.add_argument("--skip-decode", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(stream(a.child, a.batch, a.workers, a.severity, a.threads, a.corruptions))); return
    cache = Path(a.cache)
    small, large = jpeg_folder(cache, a.small), jpeg_folder(cache, a.large)
    mb = a.large * SIZE * SIZE * 3 / 1e6
    print(f"folders: {a.small} and {a.large} JPEGs of {SIZE}x{SIZE} px ({mb:.0f} MB as uint8, {4 * mb:.0f} MB as float32 for "
          f"{a.large}); batch {a.batch}, {a.workers} workers, {a.threads} torch threads, {os.cpu_count()} CPUs", flush=True)
    if not a.skip_memory:
        res = {}
        for n, root in ((a.small, small), (a.large, large)):
            r = res[n] = measure(root, a)
            print(f"{n:>6} images x {r['corruptions']} corruptions: peak RSS {r['peak_rss_mb']:.0f} MB (after imports "
                  f"{r['rss_after_imports_mb']:.0f} MB; largest worker {r['worker_peak_rss_mb']:.0f} MB) in {r['seconds']:.0f} s, "
                  f"load average {r['load'][0]:.1f} -> {r['load'][1]:.1f}", flush=True)
        d = res[a.large]["peak_rss_mb"] - res[a.small]["peak_rss_mb"]
        dw = res[a.large]["worker_peak_rss_mb"] - res[a.small]["worker_peak_rss_mb"]
        print(f"peak RSS growth {a.small} -> {a.large} images: {d:+.0f} MB (workers: {dw:+.0f} MB); issue 17 asks <= 150 MB", flush=True)
    if not a.skip_decode:
        import torch
        torch.set_num_threads(a.threads)
        from robstudy.sources import Preprocess
        for prep, what in ((None, f"native {SIZE} px"), (Preprocess(size=64), "resized to 64 px")):
            for w in (0, 2):
                load0 = os.getloadavg()[0]
                rate = decode_rate(large, w, a.batch, prep)
                print(f"decode {a.large} JPEGs ({what}), workers={w}: {rate:,.0f} images/s "
                      f"(load average {load0:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
