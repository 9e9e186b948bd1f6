"""Zoo training throughput: the plain per-model loop vs robstudy's zoo training, in the same run.

    python benchmarks/zoo.py [K] [N] [--anchor]   # K small CNNs (default 32), N training images each (default 1024)

1. With --anchor (and ../shared/bench/anchor_zoo.py present): the reference baselines first, in a
   subprocess of this job — a plain per-model PyTorch loop (channels-last, SGD) and a naive torch.func
   vmap over the same CNNs, 2 models × 2 epochs × 10,000 images (its CPU run takes about 5 minutes).
2. K ConvNets (three conv layers, width 32 -> 64 -> 128, as in anchor_zoo.py) on 32x32 RGB, batch 256,
   Adam, in this process, two rounds alternating the paths:
   - one by one: robstudy.zoo.train_models(batched=False), i.e. train_model per model (plain PyTorch);
   - auto: train_models(batched='auto'), what a study uses (one by one on a CPU, fused on a GPU);
   - fused: robstudy.batched.train_group (the torch.func path the planner uses on a GPU), one round.
   Aggregate images/s (K x N / wall) and the ratios, including auto over the anchor's plain loop.
3. Wall time of the default digits zoo (60 models) with train_models(batched='auto') and one by one.
On a CPU robstudy trains in plain PyTorch (its loop should match the anchor's plain loop). On CUDA the paths
use bf16 autocast and channels-last; benchmarks/gpu_check.py measures them on a GPU.
"""
import os, re, statistics, subprocess, sys, time
from pathlib import Path
import torch
from robstudy.zoo import zoo_grid, train_models
from robstudy.batched import train_group, plan_groups
from robstudy.data import load_digits_split

ANCHOR = Path(__file__).resolve().parents[2] / "shared" / "bench" / "anchor_zoo.py"


def convnet_zoo(K: int, width: int = 32) -> list:
    "K ConvNets of anchor_zoo.py's shape (three 3x3 conv layers, width 32 -> 64 -> 128), differing in seed: one epoch, batch 256, Adam."
    return zoo_grid(dict(families=["convnet"], widths=[width], depths=[2], epochs=[1], seeds=list(range(K)), lr=0.01, batch_size=256))


def anchor_rates(anchor, K: int, timeout=None) -> dict:
    "Run the anchor script with K models in a subprocess; its training images/s: plain per-model loop ('sequential') and naive vmap."
    out = subprocess.run([sys.executable, str(anchor), str(K)], capture_output=True, text=True, check=True, timeout=timeout).stdout
    line = out.split("train imgs/s:")[1].splitlines()[0]
    num = lambda key: float(re.search(key + r" ([\d,]+)", line).group(1).replace(",", ""))
    return {"sequential": num("sequential"), "vmap": num("vmap"), "output": out}


def images_per_second(f, imgs: int, device) -> float:
    "imgs / the wall time of f() (CUDA synchronized before and after)."
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync(); t = time.perf_counter(); f(); sync()
    return imgs / (time.perf_counter() - t)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    K = int(args[0]) if len(args) > 0 else 32
    N = int(args[1]) if len(args) > 1 else 1024
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    print("device", torch.cuda.get_device_name() if dev == "cuda" else f"cpu ({torch.get_num_threads()} threads)", "torch", torch.__version__,
          "load", os.getloadavg(), flush=True)

    anchor_loop = None
    if "--anchor" in sys.argv:
        if not ANCHOR.exists(): sys.exit(f"--anchor: {ANCHOR} not found")
        t = time.perf_counter()
        r = anchor_rates(ANCHOR, 2)
        print(f"anchor_zoo.py 2 ({time.perf_counter() - t:.0f}s):", *r["output"].strip().splitlines(), sep="\n  ", flush=True)
        anchor_loop = r["sequential"]

    g = torch.Generator().manual_seed(0)
    X, Y = torch.rand(N, 3, 32, 32, generator=g), torch.randint(0, 10, (N,), generator=g)
    cfgs = convnet_zoo(K)
    imgs = K * N
    rate = lambda f: images_per_second(f, imgs, dev)
    runs = {"one by one": [], "auto": []}
    for _ in range(2):
        runs["one by one"].append(rate(lambda: train_models(cfgs, X, Y, 10, device=dev, batched=False)))
        runs["auto"].append(rate(lambda: train_models(cfgs, X, Y, 10, device=dev)))
    fused = rate(lambda: train_group(cfgs, X, Y, 10, device=dev))
    loop, auto = statistics.mean(runs["one by one"]), statistics.mean(runs["auto"])
    print(f"{K} ConvNets, 1 epoch x {N} images, batch 256 (img/s, mean of 2 rounds: {runs}):")
    print(f"  robstudy one by one {loop:,.0f}, auto {auto:,.0f} ({auto / loop:.2f}x one by one), fused torch.func {fused:,.0f} "
          f"({fused / loop:.2f}x); auto plan fuses: {len(plan_groups(cfgs, (3, 32, 32), 10, dev)) == 1}")
    if anchor_loop: print(f"  auto over the anchor's plain per-model loop ({anchor_loop:,.0f} img/s): {auto / anchor_loop:.2f}x")

    ds = load_digits_split()
    zoo = dict(families=["logreg", "mlp", "cnn"], widths=[8, 32], depths=[1], epochs=[3, 12], train_fractions=[0.2, 0.5, 1.0],
               recipes=["erm"], seeds=[0, 1], lr=0.01, batch_size=64, weight_decay=0.0)
    dz = zoo_grid(zoo)
    t = time.perf_counter(); train_models(dz, ds.x_train, ds.y_train, 10, batched="auto"); ta = time.perf_counter() - t
    t = time.perf_counter(); train_models(dz, ds.x_train, ds.y_train, 10, batched=False); tl = time.perf_counter() - t
    print(f"default digits zoo, {len(dz)} models: auto {ta:.1f}s, one by one {tl:.1f}s, ratio {tl / ta:.2f}x; load {os.getloadavg()}")


if __name__ == "__main__":
    main()
