"""Throughput of the 15 common corruptions x 5 severities on 10,000 32x32 RGB images.

Prints total seconds and images/s for robstudy's batched corruptions, imagecorruptions' images/s on a
sample of the same images in the same run (when installed), and the ratio. Usage:

    python benchmarks/shifts.py [--n 10000] [--threads 2] [--batch 2500] [--sample 40] [--device cpu]
"""
import argparse, os, time, warnings

import numpy as np
import torch
import torch.nn.functional as F


def benchmark_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    "n RGB images size×size: Fashion-MNIST test images (when installed) upscaled and coloured, else coloured digits."
    from robstudy.data import colourize
    try:
        from robstudy.readers import load_fashion_mnist
        x = load_fashion_mnist().x_test
        src = "Fashion-MNIST test set"
    except Exception:
        from robstudy.data import load_digits_split
        d = load_digits_split(); x = torch.cat([d.x_train, d.x_test]); src = "scikit-learn digits"
    x = x[torch.arange(n) % len(x)]
    return colourize(x, size=size, seed=seed), src


def corruption_seconds(x: torch.Tensor,       # images N×C×H×W in [0, 1], on the device to measure
                       names,                  # registered shift names
                       batch: int,             # images per call
                       severities=range(1, 6),
                       on_done=None            # optional callable(name, seconds) as each shift finishes
                      ) -> dict:
    "Seconds each shift takes over `x` at every severity, in batches of `batch` (CUDA synchronized around each)."
    from robstudy.shifts import get_shift
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    per = {}
    for name in names:
        s = get_shift(name)
        sync(); t0 = time.perf_counter()
        for sev in severities:
            for i in range(0, len(x), batch):
                s(x[i:i + batch], sev, seed=0, index=torch.arange(i, min(i + batch, len(x)), device=x.device))
        sync(); per[name] = time.perf_counter() - t0
        if on_done: on_done(name, per[name])
    return per


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000); ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2500); ap.add_argument("--sample", type=int, default=40)
    ap.add_argument("--device", default="cpu"); ap.add_argument("--only", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from robstudy.shifts import COMMON_CORRUPTIONS, get_shift, published_name
    x, src = benchmark_images(a.n)
    x = x.to(a.device)
    names = [s for s in COMMON_CORRUPTIONS if not a.only or s in a.only.split(",")]
    print(f"images: {a.n} x {tuple(x.shape[1:])} from {src}; device {a.device}; torch threads {a.threads}; batch {a.batch}")
    get_shift(names[0])(x[:8], 1)  # warm-up
    per = corruption_seconds(x, names, a.batch, on_done=lambda name, sec: print(
        f"  {name:18s} {sec:7.2f} s  {5 * a.n / sec:10.0f} images/s", flush=True))
    total = sum(per.values())
    n_img = 5 * a.n * len(names)
    ours = n_img / total
    print(f"robstudy: {len(names)} corruptions x 5 severities x {a.n} images = {n_img} images in {total:.1f} s -> {ours:.0f} images/s")
    try:
        import imagecorruptions
    except ImportError:
        print("imagecorruptions not installed: no comparison"); return
    from imagecorruptions import corrupt
    warnings.filterwarnings("ignore")
    _patch_imagecorruptions()
    xs = (x[:a.sample].permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
    t0 = time.perf_counter(); k = 0; failed = []
    np.random.seed(0)
    for name in names:
        for sev in range(1, 6):
            for img in xs:
                try: corrupt(img, severity=sev, corruption_name=published_name(name)); k += 1
                except Exception as e: failed.append(name); break
    dt = time.perf_counter() - t0
    theirs = k / dt
    print(f"imagecorruptions (ImageNet-C constants, one image at a time, 1 process): {k} images in {dt:.1f} s -> {theirs:.0f} images/s"
          + (f" (failed: {sorted(set(failed))})" if failed else ""))
    print(f"ratio robstudy / imagecorruptions: {ours / theirs:.1f}x")


def _patch_imagecorruptions():
    "Make imagecorruptions 1.1.2 run on numpy 2 / scikit-image >= 0.19 (np.float_ and gaussian(multichannel=))."
    import imagecorruptions.corruptions as ic
    if not hasattr(np, "float_"): np.float_ = np.float64
    g = ic.gaussian
    if getattr(g, "_robstudy_patched", False): return
    def gaussian(image, sigma=1, multichannel=None, **kw):
        if multichannel: kw["channel_axis"] = -1
        return g(image, sigma=sigma, **kw)
    gaussian._robstudy_patched = True
    ic.gaussian = gaussian


if __name__ == "__main__":
    main()
