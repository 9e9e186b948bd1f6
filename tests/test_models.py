"Bad zoo input is refused before training; every family's checkpoint round-trips without pickles."
import pytest
import torch
from robstudy.zoo import zoo_grid, train_models
from robstudy.training import train_model, MODEL_DEFAULTS
from robstudy.checkpoints import save_checkpoint, load_checkpoint, CheckpointError
from robstudy.models import FAMILIES
from robstudy.recipes import RECIPES

X, Y = torch.rand(60, 1, 8, 8), torch.arange(60) % 10
BASE = dict(family="mlp", width=8, depth=1, epochs=1, train_fraction=1.0, recipe="erm", seed=0, lr=0.01, batch_size=32, weight_decay=0.0)

@pytest.mark.parametrize("bad, msg", [
    (dict(BASE, family="transformer9"), "unknown model family 'transformer9'"),
    (dict(BASE, recipe="sam"), "unknown recipe 'sam'"),
    (dict(BASE, train_fraction=0.0), "train_fraction: 0.0 is not allowed; expected a number in (0, 1]"),
    (dict(BASE, train_fraction=1.2), "train_fraction: 1.2 is not allowed; expected a number in (0, 1]"),
    (dict(BASE, family="vit", width=8, patch=16, heads=2), "ViT patch size 16 does not fit 8×8"),
    (dict(BASE, recipe="groupdro", eta=0.01), "needs group labels"),
])
def test_bad_config_fails_before_any_training(bad, msg):
    calls = []
    with pytest.raises(ValueError, match=None) as e:
        train_models([BASE, bad], X, Y, 10, progress=lambda d, t: calls.append(d))
    assert msg in str(e.value) and calls == []

def test_bad_grid():
    with pytest.raises(ValueError, match="unknown model family"): zoo_grid(dict(families=["nope"], epochs=[1], seeds=[0]))
    with pytest.raises(ValueError, match="zoo.train_fractions: 2 is not allowed"):
        zoo_grid(dict(families=["mlp"], widths=[8], epochs=[1], seeds=[0], train_fractions=[2]))

@pytest.mark.parametrize("fam, extra", [("logreg", {}), ("mlp", {}), ("cnn", {}), ("convnet", {}), ("resnet", {}),
                                        ("vit", dict(patch=4, heads=2)), ("random_features", dict(bandwidth=2.0)),
                                        ("knn", dict(k=3)), ("random_forest", dict(n_trees=5, max_depth=None)), ("linear_svm", dict(C=1.0))])
def test_checkpoint_roundtrip_every_family(tmp_path, fam, extra):
    cfg = {**BASE, "family": fam, **extra}
    m, info = train_model(cfg, X, Y, 10)
    save_checkpoint(m, cfg, {"in_shape": [1, 8, 8], "n_classes": 10}, tmp_path / "m")
    m2, rec = load_checkpoint(tmp_path / "m")
    assert rec["config"] == cfg
    with torch.no_grad(): assert torch.equal(m(X), m2(X))
    (tmp_path / "m.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError): load_checkpoint(tmp_path / "m")

def test_batched_matches_loop_and_keeps_metadata():
    cfgs = [dict(BASE, seed=s, epochs=e, train_fraction=f) for s, e, f in [(0, 2, 1.0), (1, 1, 0.5)]]
    fused = train_models(cfgs, X, Y, 10, batched=True)
    alone = train_models(cfgs, X, Y, 10, batched=False)
    for (a, ia), (b, ib), c in zip(fused, alone, cfgs):
        assert ia["batched"] == 2 and ib["batched"] == 1
        assert all(ia[k] == v for k, v in c.items()) and ia["params"] == ib["params"] and ia["train_seconds"] > 0
        for p, q in zip(a.state_dict().values(), b.state_dict().values()): torch.testing.assert_close(p, q, atol=2e-4, rtol=1e-4)

def test_public_names():
    assert {"logreg", "mlp", "cnn"} <= set(FAMILIES) and "erm" in RECIPES and MODEL_DEFAULTS["recipe"] == "erm"


ONE_THREAD = """
from robstudy.datasets import load_dataset
from robstudy.training import train_model
ds = load_dataset("digits")
cfg = dict(family="resnet", width=4, depth=1, epochs=2, train_fraction=0.5, recipe="erm", seed=0, lr=0.01, batch_size=64, weight_decay=0.0)
for seed in range(3): train_model({**cfg, "seed": seed}, ds.x_train, ds.y_train, 10)
print("trained")
"""


def test_convolutional_training_with_one_thread():
    "A ResNet trains on the CPU with torch on one thread (OMP_NUM_THREADS=1, as cluster jobs set it): channels-last there corrupted the heap."
    import os, subprocess, sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", ONE_THREAD], env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "trained" in r.stdout, (r.returncode, r.stderr[-2000:])
