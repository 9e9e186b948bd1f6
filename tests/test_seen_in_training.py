"""Every model records what its recipe showed it in training, and an evaluation shift that overlaps it can be
flagged (issue 16, item 10, the recipe side): the overlap is by shift family, defined in nbs/03b_recipes.ipynb."""
import pytest
import torch

from robstudy.recipes import AUGMIX_OPS, RECIPES, overlaps, seen_in_training
from robstudy.shifts import shift_table
from robstudy.zoo import train_models

FAMILIES = shift_table().groupby("family")["name"].apply(set).to_dict()
GEOMETRIC, NOISE = FAMILIES["geometric"], FAMILIES["noise"]
ALL = set(shift_table().name)


def flagged(cfg):
    return {s for s in ALL if overlaps(seen_in_training(cfg), s)}


@pytest.mark.parametrize("cfg, expected", [
    (dict(recipe="erm"), set()),
    (dict(recipe="label_smoothing"), set()),
    (dict(recipe="groupdro"), set()),
    (dict(recipe="mixup"), set()),
    (dict(recipe="pgd_at"), set()),
    (dict(recipe="trades"), set()),
    (dict(recipe="augmix"), GEOMETRIC),                                  # AugMix's rotate/shear/translate; its tone ops overlap nothing
    (dict(recipe="augmix", ops="autocontrast,equalize,posterize,solarize"), set()),
    (dict(recipe="augmix", ops="rotate"), GEOMETRIC),
    (dict(recipe="augment"), GEOMETRIC | NOISE),                         # crop/flip and gaussian noise
    (dict(recipe="augment", noise=0.0), GEOMETRIC),
    (dict(recipe="finetune"), GEOMETRIC),                                # pretrained under rotation
    (dict(recipe="linear_probe", pretrain_shift="fog"), FAMILIES["weather"]),
    (dict(recipe="zero_shot", pretrain_shift=None), set()),
    (dict(recipe="zero_shot", pretrain_severity=0), set()),               # severity 0 leaves the images as they are
], ids=lambda v: str(v) if isinstance(v, dict) else None)
def test_overlap_by_recipe(cfg, expected):
    assert flagged({"family": "mlp", **cfg}) == expected


def test_the_issue_examples():
    aug = seen_in_training({"family": "mlp", "recipe": "augmix"})
    assert {"rotation", "rotate", "shear", "translate", "scale"} <= {s for s in ALL if overlaps(aug, s)}
    assert not overlaps(aug, "contrast") and not overlaps(aug, "fog") and not overlaps(aug, "clean")
    assert len(aug) == len(AUGMIX_OPS) and all(e.count(":") == 1 for e in aug)
    assert overlaps(",".join(aug), "rotation")                           # the stored (comma-joined) form works the same
    assert overlaps(["adversarial:pgd_linf"], "pgd") and not overlaps(["adversarial:pgd_linf"], "gaussian_noise")


def test_classic_models_saw_nothing():
    assert seen_in_training({"family": "knn", "recipe": "augmix"}) == []


def test_bad_input():
    with pytest.raises(ValueError, match="family:name"): overlaps(["rotation"], "rotation")
    with pytest.raises(KeyError, match="unknown shift 'rotaton'"): overlaps([], "rotaton")


def test_every_recipe_default_is_recorded_in_the_models_info():
    x, y = torch.rand(40, 1, 8, 8), torch.arange(40) % 10
    base = dict(family="mlp", width=8, depth=1, epochs=1, train_fraction=1.0, seed=0, lr=0.01, batch_size=32, weight_decay=0.0)
    cfgs = [dict(base, recipe=r, **RECIPES[r].defaults) for r in ("erm", "augment", "augmix", "pgd_at")]
    cfgs += [dict(base, family="knn", k=3, recipe="erm"), dict(base, seed=1, recipe="erm"), dict(base, seed=2, recipe="erm")]
    loop = train_models(cfgs, x, y, 10, batched=False)
    fused = train_models(cfgs, x, y, 10, batched=True)                     # the erm MLPs train as one stack here
    assert {inf["batched"] for _, inf in fused} > {1}
    for c, (_, a), (_, b) in zip(cfgs, loop, fused):
        assert a["seen_in_training"] == b["seen_in_training"] == ",".join(seen_in_training(c))
        assert isinstance(a["seen_in_training"], str)
    assert loop[2][1]["seen_in_training"].startswith("geometric:rotate,")
