"""Pretrained-model throughput: a timm model's bare forward vs the same model through robstudy's LoadedModel.

    python benchmarks/pretrained.py [ROUNDS]     # ROUNDS timed batches per path (default 6)

timm `resnet18` (1000 classes, random weights saved to a temporary safetensors file), 64 px, batch 256, torch threads as
they are, inference mode, on pre-decoded tensors (no JPEG decoding: that is the engine's figure, measured when it lands):

- bare: the model called on float images already normalised (the floor any evaluation pays);
- loaded: `load_model_entry(...)` on uint8 images already at 64 px: to float / 255, then the LoadedModel (normalisation inside);
- loaded+resize: uint8 images stored at 72 px: resized (shorter side, antialiased) and center-cropped to 64 by
  torchvision.transforms.v2.functional as `LoadedModel.preprocess` says, then as `loaded`.

The paths alternate batch by batch and each rate is the median over its rounds; the ratios are loaded / bare. Each rate is
given per wall second and per CPU second of this process (the second is steadier on a machine shared with other jobs; the load
average is printed with them).
"""
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from robstudy.pretrained import load_model_entry

BATCH, SIZE, STORED = 256, 64, 72


def prepare(x: torch.Tensor, prep) -> torch.Tensor:
    "uint8 N×C×H×W -> float [0, 1] at the model's input size, as `prep` (a Preprocess) says."
    if prep.size is not None and min(x.shape[-2:]) != prep.size:
        x = TF.resize(x, prep.size, interpolation=InterpolationMode(prep.interpolation), antialias=True)
    if prep.crop is not None: x = TF.center_crop(x, prep.crop)
    return x.float().div_(255)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    torch.manual_seed(0)
    bare = timm.create_model("resnet18").eval()
    with tempfile.TemporaryDirectory() as d:
        save_file(bare.state_dict(), Path(d) / "resnet18.safetensors")
        lm = load_model_entry({"source": "timm:resnet18", "weights": str(Path(d) / "resnet18.safetensors"),
                               "preprocess": {"crop": SIZE, "crop_pct": 1.0}}, n_classes=1000)
    mean, std = torch.tensor(lm.mean).view(1, 3, 1, 1), torch.tensor(lm.std).view(1, 3, 1, 1)
    at_size = torch.randint(0, 256, (BATCH, 3, SIZE, SIZE), dtype=torch.uint8)
    stored = torch.randint(0, 256, (BATCH, 3, STORED, STORED), dtype=torch.uint8)
    normalised = (at_size.float() / 255 - mean) / std
    paths = {"bare": lambda: bare(normalised),
             "loaded": lambda: lm(prepare(at_size, lm.preprocess)),
             "loaded+resize": lambda: lm(prepare(stored, lm.preprocess))}
    rates, cpu_rates = {k: [] for k in paths}, {k: [] for k in paths}
    with torch.inference_mode():
        torch.testing.assert_close(paths["loaded"](), paths["bare"]())      # the same logits, or the comparison means nothing
        for f in paths.values(): f()                                       # warm up every path
        for _ in range(rounds):
            for k, f in paths.items():
                t, c = time.perf_counter(), time.process_time(); f()
                rates[k].append(BATCH / (time.perf_counter() - t)); cpu_rates[k].append(BATCH / (time.process_time() - c))
    med = {k: statistics.median(v) for k, v in rates.items()}
    cpu = {k: statistics.median(v) for k, v in cpu_rates.items()}
    print(f"timm resnet18, {SIZE} px, batch {BATCH}, torch threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"timm {timm.__version__}, {rounds} rounds (medians), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for k in paths:
        ratio = "" if k == "bare" else f"   ratio to bare {med[k] / med['bare']:.3f} (wall), {cpu[k] / cpu['bare']:.3f} (CPU)"
        print(f"  {k:14s} {med[k]:8.0f} images/s wall, {cpu[k]:8.0f} images per CPU-second{ratio}")


if __name__ == "__main__":
    main()
