"""Zoo training throughput: the plain per-model loop vs robstudy's batched path, in the same run.

    python benchmarks/zoo.py [K] [N]     # K small CNNs (default 32), N training images (default 1024)

1. K ConvNets (three conv layers, width 32 -> 64 -> 128, as in ../shared/bench/anchor_zoo.py) on
   32x32 RGB, batch 256, Adam: the plain loop (robstudy.models.train_model per model) and the fused
   path (robstudy.batched.train_group), aggregate images/s and their ratio.
2. Wall time of the default digits zoo (60 models) with train_models(batched='auto') and one by one.
On CUDA the paths use bf16 autocast (and channels-last in the loop); that path is not measured here.
"""
import os, sys, time
import torch
from robstudy.models import zoo_grid, train_model, train_models
from robstudy.batched import train_group, plan_groups
from robstudy.data import load_digits_split

torch.set_num_threads(2)
K = int(sys.argv[1]) if len(sys.argv) > 1 else 32
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
dev = "cuda" if torch.cuda.is_available() else "cpu"
print("device", torch.cuda.get_device_name() if dev == "cuda" else "cpu (2 threads)", "torch", torch.__version__, "load", os.getloadavg())

g = torch.Generator().manual_seed(0)
X, Y = torch.rand(N, 3, 32, 32, generator=g), torch.randint(0, 10, (N,), generator=g)
cfgs = zoo_grid(dict(families=["convnet"], widths=[32], depths=[2], epochs=[1], seeds=list(range(K)), lr=0.01, batch_size=256))
imgs = K * N
t = time.perf_counter(); [train_model(c, X, Y, 10, device=dev) for c in cfgs]; tl = time.perf_counter() - t
t = time.perf_counter(); train_group(cfgs, X, Y, 10, device=dev); tb = time.perf_counter() - t
print(f"{K} ConvNets, 1 epoch x {N} images, batch 256: loop {imgs / tl:,.0f} img/s ({tl:.1f}s), "
      f"batched {imgs / tb:,.0f} img/s ({tb:.1f}s), ratio {tl / tb:.2f}x; auto plan fuses: {len(plan_groups(cfgs, (3, 32, 32), 10, dev)) == 1}")

ds = load_digits_split()
zoo = dict(families=["logreg", "mlp", "cnn"], widths=[8, 32], depths=[1], epochs=[3, 12], train_fractions=[0.2, 0.5, 1.0],
           recipes=["erm"], seeds=[0, 1], lr=0.01, batch_size=64, weight_decay=0.0)
dz = zoo_grid(zoo)
t = time.perf_counter(); train_models(dz, ds.x_train, ds.y_train, 10, batched="auto"); ta = time.perf_counter() - t
t = time.perf_counter(); train_models(dz, ds.x_train, ds.y_train, 10, batched=False); tl = time.perf_counter() - t
print(f"default digits zoo, {len(dz)} models: auto {ta:.1f}s, one by one {tl:.1f}s, ratio {tl / ta:.2f}x; load {os.getloadavg()}")
