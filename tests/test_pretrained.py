"""Pretrained and external models in a zoo (issue 17, zoo layer): timm, torchvision, hf, file and study entries load to a model whose
logits equal a direct call of the same architecture with the same weights on the same normalised input; ids are stable, do not depend
on where the weights lie, and change with the weights; every bad entry is a clear error before any work, with nothing written; the
user's hub caches are read offline, never downloaded from."""
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import timm
import torchvision
from safetensors.torch import load_file, save_file

from robstudy.checkpoints import model_id as checkpoint_model_id, save_checkpoint
from robstudy.models import build_model
from robstudy.pretrained import (IMAGENET_MEAN, IMAGENET_STD, LoadedModel, ModelEntryError, Preprocess, check_model_entries,
                                 check_model_entry, entry_model_id, file_sha256, load_model_entry)

ROOT = Path(__file__).resolve().parents[1]
MEAN, STD = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
AT64 = {"crop": 64, "crop_pct": 1.0}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    "Random-weight timm and torchvision resnet18s (10 classes) in every format robstudy reads, and a robstudy checkpoint in a runs folder."
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    r18 = timm.create_model("resnet18", num_classes=10).eval()
    save_file(r18.state_dict(), d / "r18.safetensors")
    torch.save(r18.state_dict(), d / "r18.pth")
    torch.save({"model": r18.state_dict(), "epoch": 5, "lr": 0.1}, d / "r18_ckpt.pth")       # a training checkpoint
    torch.manual_seed(1)
    save_file(timm.create_model("resnet18", num_classes=10).state_dict(), d / "r18_other.safetensors")
    save_file(torchvision.models.resnet18(num_classes=10).state_dict(), d / "tv18.safetensors")
    cfg = dict(family="cnn", width=4, depth=1, epochs=1, seed=0)
    mid = checkpoint_model_id(cfg, "fp")
    save_checkpoint(build_model(cfg, (1, 8, 8), 10), cfg, {"in_shape": [1, 8, 8], "n_classes": 10, "dataset": "digits"},
                    d / "runs" / "pre" / "models" / mid)
    return d, mid


def timm_r18(path):
    m = timm.create_model("resnet18", num_classes=10).eval()
    m.load_state_dict(load_file(path))
    return m


@pytest.mark.parametrize("fname", ["r18.safetensors", "r18.pth", "r18_ckpt.pth"])
def test_timm_logits_equal_a_direct_call(files, fname):
    d, _ = files
    lm = load_model_entry({"source": "timm:resnet18", "weights": str(d / fname), "preprocess": AT64}, n_classes=10)
    assert isinstance(lm, LoadedModel) and not lm.model.training
    assert lm.preprocess == Preprocess(64, 64, "bicubic", 3) and lm.input_shape == (3, 64, 64)
    assert (lm.mean, lm.std) == (IMAGENET_MEAN, IMAGENET_STD)        # timm's pretrained_cfg for resnet18
    x = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(lm(x), timm_r18(d / "r18.safetensors")((x - MEAN) / STD))
    assert lm.meta["weights_sha256"] == file_sha256(d / fname)
    assert lm.meta["params"] == sum(p.numel() for p in timm_r18(d / "r18.safetensors").parameters())
    assert lm.meta["timm_version"] == timm.__version__ and lm.meta["torch_version"] == torch.__version__


def test_torchvision_logits_equal_a_direct_call(files):
    d, _ = files
    ref = torchvision.models.resnet18(num_classes=10).eval()
    ref.load_state_dict(load_file(d / "tv18.safetensors"))
    lm = load_model_entry({"source": "torchvision:resnet18", "weights": str(d / "tv18.safetensors"), "preprocess": AT64}, n_classes=10)
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(lm(x), ref((x - MEAN) / STD))
    assert lm.meta["architecture"] == "torchvision:resnet18" and lm.meta["torchvision_version"] == torchvision.__version__
    # without a weights enum: ImageNet's defaults; with one: its transforms (and no class names unless the outputs match)
    assert check_model_entry({"source": "torchvision:resnet18", "weights": str(d / "tv18.safetensors")}, n_classes=10)["preprocess"] \
        == Preprocess(256, 224, "bilinear", 3)
    spec = check_model_entry({"source": "torchvision:resnet18.IMAGENET1K_V1", "weights": str(d / "tv18.safetensors")}, n_classes=10)
    assert spec["preprocess"] == Preprocess(256, 224, "bilinear", 3) and spec["classes"] is None and spec["pretraining"] == "IMAGENET1K_V1"


def test_file_source_is_its_architecture_with_those_weights(files):
    d, _ = files
    a = load_model_entry({"source": "timm:resnet18", "weights": str(d / "r18.safetensors"), "preprocess": AT64}, n_classes=10)
    b = load_model_entry({"source": f"file:{d / 'r18.safetensors'}", "arch": "timm:resnet18", "preprocess": AT64}, n_classes=10)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)
    assert a.model_id == b.model_id and b.meta["source"] == f"file:{d / 'r18.safetensors'}" and b.meta["name"] == "r18"


def test_ids_are_stable_path_free_and_change_with_the_weights(files, tmp_path):
    d, _ = files
    e = {"source": "timm:resnet18", "weights": str(d / "r18.safetensors"), "preprocess": AT64}
    i0 = entry_model_id(check_model_entry(e, n_classes=10))
    assert i0 == entry_model_id(check_model_entry(dict(reversed(list(e.items()))), n_classes=10)) == \
        load_model_entry(e, n_classes=10).model_id
    moved = tmp_path / "somewhere" / "else.safetensors"
    moved.parent.mkdir(); moved.write_bytes((d / "r18.safetensors").read_bytes())
    assert entry_model_id(check_model_entry({**e, "weights": str(moved), "name": "a label"}, n_classes=10)) == i0
    assert entry_model_id(check_model_entry({**e, "weights": str(d / "r18_other.safetensors")}, n_classes=10)) != i0
    assert entry_model_id(check_model_entry({**e, "preprocess": {"crop": 64, "crop_pct": 0.875}}, n_classes=10)) != i0
    assert entry_model_id(check_model_entry({**e, "preprocess": {**AT64, "mean": [0.5] * 3}}, n_classes=10)) != i0
    # the digest cache: an unchanged file is hashed once, a changed one again
    cache = tmp_path / "cache"
    assert entry_model_id(check_model_entry(e, n_classes=10), cache) == i0 and len(list(cache.rglob("*.json"))) == 1


def test_a_study_checkpoint_loads_inside_the_runs_folder(files, tmp_path):
    d, mid = files
    runs = d / "runs"
    lm = load_model_entry({"source": f"study:pre/{mid}"}, runs=runs, n_classes=10)
    rec_model = build_model(dict(family="cnn", width=4, depth=1, epochs=1, seed=0), (1, 8, 8), 10).eval()
    rec_model.load_state_dict(load_file(runs / "pre" / "models" / f"{mid}.safetensors"))
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(lm(x), rec_model(x))
    assert (lm.preprocess, lm.mean, lm.std) == (Preprocess(8, 8, "bilinear", 1), (0.0,), (1.0,))
    assert lm.meta["pretraining"] == "digits" and lm.meta["architecture"] == "robstudy:cnn"


BAD = [  # (entry, message): each a clear error from check_model_entry and load_model_entry, before anything is read or written
    ({"source": "timm:resnet18", "weights": "{d}/missing.safetensors"}, "missing.safetensors does not exist"),
    ({"source": "timm:mobilenetv3_small_100", "weights": "{d}/tv18.safetensors"}, "tv18.safetensors does not fit timm:mobilenetv3_small_100"),
    ({"source": "torchvision:squeezenet1_1", "weights": "{d}/r18.safetensors"}, "r18.safetensors does not fit torchvision:squeezenet1_1"),
    ({"source": "timm:resnet18", "weights": "{d}/r18.safetensors", "num_classes": 10, "name": "x"}, "num_classes=10 but the study has 100"),
    ({"source": "timm:resnet50", "weights": "{d}/r18.safetensors"}, "does not fit timm:resnet50"),
    ({"source": "timm:resnet18", "weights": "{d}/r18.safetensors", "preprocess": {"crop": 64, "size": 32}}, "crop=64 is larger"),
    ({"source": "tensorflow:resnet50"}, "unknown source kind 'tensorflow'"),
    ({"source": "timm:resnet18", "weigths": "x.pth"}, "unknown key(s) ['weigths']"),
    ({"source": "study:../outside/abc"}, "paths stay inside the runs folder"),
    ({"source": "study:pre/../../x"}, "paths stay inside the runs folder"),
    ({"source": "study:/etc/passwd"}, "paths stay inside the runs folder"),
    ({"source": "study:pre/a.json"}, "paths stay inside the runs folder"),
    ({"source": "study:pre/0123456789ab"}, "run study 'pre' first"),
    ({"source": "file:{d}/r18.safetensors", "arch": "hf:x"}, "expected a timm: or torchvision: architecture"),
    ({"source": "hf:{d}"}, "is not a saved transformers model"),
    ({"source": "timm:resnet18", "weights": "{d}/r18.safetensors", "meta": {"model_id": "x"}}, "computed by robstudy"),
]


@pytest.mark.parametrize("entry,message", BAD, ids=[m for _, m in BAD])
def test_bad_entries_fail_before_any_work(files, tmp_path, entry, message):
    d, _ = files
    entry = {k: v.format(d=d) if isinstance(v, str) else v for k, v in entry.items()}
    before = sorted(p.relative_to(d) for p in d.rglob("*"))
    with pytest.raises(ModelEntryError) as e:
        check_model_entry(entry, runs=d / "runs", n_classes=100 if "num_classes" in entry else 10)
    assert message in str(e.value), str(e.value)
    with pytest.raises(ModelEntryError) as e:
        load_model_entry(entry, runs=d / "runs", n_classes=100 if "num_classes" in entry else 10, cache_dir=tmp_path / "cache")
    assert message in str(e.value)
    assert not (tmp_path / "cache").exists() and sorted(p.relative_to(d) for p in d.rglob("*")) == before


def test_weights_for_another_number_of_classes_name_the_layer(files):
    d, _ = files
    with pytest.raises(ModelEntryError, match=r"fc.weight is \(10, 512\) in the file, \(1000, 512\) in the model"):
        check_model_entry({"source": "timm:resnet18", "weights": str(d / "r18.safetensors")}, n_classes=1000)


def test_nothing_is_unpickled(files, tmp_path):
    class Payload:
        def __reduce__(self): return (os.system, (f"touch {tmp_path / 'pwned'}",))
    torch.save({"fc.weight": torch.zeros(1), "x": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(ModelEntryError, match="never unpickles"):
        load_model_entry({"source": "timm:resnet18", "weights": str(tmp_path / "evil.pth")})
    assert not (tmp_path / "pwned").exists()


def test_a_truncated_file_is_named(files, tmp_path):
    d, _ = files
    data = (d / "r18.safetensors").read_bytes()
    (tmp_path / "half.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelEntryError, match="half.safetensors"):
        load_model_entry({"source": "timm:resnet18", "weights": str(tmp_path / "half.safetensors")}, n_classes=10)


def test_a_study_link_out_of_the_runs_folder_is_refused(files, tmp_path):
    d, mid = files
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    (outside / "models").mkdir(parents=True); runs.mkdir()
    for ext in (".json", ".safetensors"):
        (outside / "models" / f"{mid}{ext}").write_bytes((d / "runs" / "pre" / "models" / f"{mid}{ext}").read_bytes())
    (runs / "linked").symlink_to(outside)
    with pytest.raises(ModelEntryError, match="leads outside the runs folder"):
        check_model_entry({"source": f"study:linked/{mid}"}, runs=runs)
    with pytest.raises(ModelEntryError, match="needs the runs folder"):
        check_model_entry({"source": f"study:pre/{mid}"})


def test_entries_are_checked_together(files):
    d, _ = files
    good = {"source": "timm:resnet18", "weights": str(d / "r18.safetensors")}
    assert [s["name"] for s in check_model_entries([good, {**good, "name": "copy"}], n_classes=10)] == ["resnet18", "copy"]
    with pytest.raises(ModelEntryError) as e:
        check_model_entries([good, {"source": "x:y"}, {**good, "name": "b", "weights": "nope.pth"}], n_classes=10)
    assert "zoo.models[1]: source='x:y'" in str(e.value) and "zoo.models[2]" in str(e.value) and "zoo.models[0]" not in str(e.value)
    with pytest.raises(ModelEntryError, match="two entries are named 'resnet18'"):
        check_model_entries([good, good], n_classes=10)


HUB_SCRIPT = r"""
import math, os, sys, torch, timm
from pathlib import Path
from safetensors.torch import save_file, load_file
from robstudy.pretrained import check_model_entry, load_model_entry, entry_model_id, Preprocess, ModelEntryError
hf, th = Path(os.environ["HF_HUB_CACHE"]), Path(os.environ["TORCH_HOME"])

def error(f):
    try: f()
    except ModelEntryError as e: return str(e)
    raise AssertionError("no error")

# timm's weights in the Hugging Face cache, laid out as huggingface_hub writes it (refs/main -> snapshots/<commit>/)
commit = "0123456789abcdef0123456789abcdef01234567"
repo = hf / "models--timm--test_resnet.r160_in1k"
(repo / "refs").mkdir(parents=True); (repo / "refs" / "main").write_text(commit)
snap = repo / "snapshots" / commit; snap.mkdir(parents=True)
torch.manual_seed(0)
ref = timm.create_model("test_resnet.r160_in1k").eval()
save_file(ref.state_dict(), snap / "model.safetensors")
spec = check_model_entry({"source": "timm:test_resnet.r160_in1k"})
assert spec["weights"] == [snap / "model.safetensors"], spec["weights"]
assert spec["preprocess"] == Preprocess(math.floor(160 / 0.95), 160, "bilinear", 3) and spec["mean"] == (0.5, 0.5, 0.5), spec
lm = load_model_entry({"source": "timm:test_resnet.r160_in1k"}, n_classes=1000)
x = torch.rand(2, 3, 160, 160)
with torch.no_grad(): torch.testing.assert_close(lm(x), ref((x - 0.5) / 0.5))
assert lm.meta["pretraining"] == "r160_in1k" and lm.model_id == entry_model_id(spec)

# not cached: an error that says how to fetch it, never a download
msg = error(lambda: check_model_entry({"source": "timm:test_vit.r160_in1k"}))
assert "robstudy never downloads" in msg and "timm.create_model('test_vit.r160_in1k', pretrained=True)" in msg and str(hf) in msg, msg
msg = error(lambda: check_model_entry({"source": "torchvision:squeezenet1_1"}))
assert str(th / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth") in msg and "weights='IMAGENET1K_V1'" in msg, msg

# a torch hub file that is not the published one (its name carries the sha256 prefix)
import torchvision
(th / "hub" / "checkpoints").mkdir(parents=True)
torch.save(torchvision.models.squeezenet1_1().state_dict(), th / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth")
spec = check_model_entry({"source": "torchvision:squeezenet1_1"}, n_classes=1000)
assert spec["preprocess"] == Preprocess(256, 224, "bilinear", 3) and len(spec["classes"]) == 1000
msg = error(lambda: load_model_entry({"source": "torchvision:squeezenet1_1"}, n_classes=1000))
assert "damaged or not the published one" in msg and "b8a52dc0" in msg, msg
print("ok")
"""


@pytest.mark.slow
def test_hub_caches_are_read_offline(tmp_path):
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "torch"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", HUB_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    d = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    vit = transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=10)).eval()
    vit.save_pretrained(d / "vit"); transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(d / "vit")
    res = transformers.ResNetForImageClassification(transformers.ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=10, id2label={i: f"digit {i}" for i in range(10)})).eval()
    res.save_pretrained(d / "resnet")
    transformers.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875, image_mean=[0.4, 0.5, 0.6], image_std=[0.2, 0.25, 0.3]) \
        .save_pretrained(d / "resnet")
    return d, vit, res


def test_hf_folder_logits_equal_a_direct_call(hf_folders):
    d, vit, res = hf_folders
    lm = load_model_entry({"source": f"hf:{d / 'vit'}"}, n_classes=10)
    assert lm.preprocess == Preprocess(32, 32, "bilinear", 3) and lm.mean == (0.5, 0.5, 0.5)
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(lm(x), vit(pixel_values=(x - 0.5) / 0.5).logits)
    lm = load_model_entry({"source": f"hf:{d / 'resnet'}"}, n_classes=10)
    assert lm.preprocess == Preprocess(36, 32, "bicubic", 3) and lm.classes == [f"digit {i}" for i in range(10)]
    m, s = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(lm(x), res(pixel_values=(x - m) / s).logits)
    assert lm.meta["architecture"] == "hf:ResNetForImageClassification" and lm.meta["transformers_version"]


def test_hf_folder_errors(hf_folders, tmp_path):
    import transformers
    d, _, _ = hf_folders
    with pytest.raises(ModelEntryError, match="has 10 outputs"):
        check_model_entry({"source": f"hf:{d / 'vit'}"}, n_classes=5)
    bad = tmp_path / "noproc"
    bad.mkdir()
    for f in ("config.json", "model.safetensors"): (bad / f).write_bytes((d / "vit" / f).read_bytes())
    with pytest.raises(ModelEntryError, match="preprocessor_config.json does not exist"):
        check_model_entry({"source": f"hf:{bad}"})
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for f in ("config.json", "preprocessor_config.json"): (wrong / f).write_bytes((d / "vit" / f).read_bytes())
    (wrong / "model.safetensors").write_bytes((d / "resnet" / "model.safetensors").read_bytes())   # another model's weights
    with pytest.raises(ModelEntryError, match="does not load into hf:ViTForImageClassification|do not fit"):
        load_model_entry({"source": f"hf:{wrong}"}, n_classes=10)
    text = tmp_path / "text"
    text.mkdir()
    transformers.BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8).save_pretrained(text)
    (text / "model.safetensors").write_bytes((d / "vit" / "model.safetensors").read_bytes())
    with pytest.raises(ModelEntryError, match="does not describe an image classifier"):
        check_model_entry({"source": f"hf:{text}"})
