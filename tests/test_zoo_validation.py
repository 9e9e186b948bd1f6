"""Every zoo value is checked before anything is built (issue 16, item 14): each bad value is refused with a
message naming `zoo.<key>`, the value and what is allowed; empty lists and bools are errors; sizes have bounds;
a zoo above LARGE_ZOO models needs zoo.confirm_large. And a single model config is checked the same way."""
import pytest

from robstudy.training import check_config
from robstudy.zoo import LARGE_ZOO, zoo_grid, zoo_size

ZOO = dict(families=["logreg", "mlp", "cnn"], widths=[8, 32], depths=[1], epochs=[3, 12], train_fractions=[0.2, 0.5, 1.0],
           recipes=["erm"], seeds=[0, 1], lr=0.01, batch_size=64, weight_decay=0.0)   # the default digits zoo: 60 models

BAD = [  # (change to the zoo, text the error must contain)
    # the slips reported in issue 16
    (dict(depths=[-1]), "zoo.depths: -1 is not allowed; expected an integer from 1 to 64"),
    (dict(depths=[0]), "zoo.depths: 0 is not allowed"),
    (dict(families=[]), "zoo.families: the list is empty"),
    (dict(seeds=[]), "zoo.seeds: the list is empty"),
    (dict(train_fractions=[]), "zoo.train_fractions: the list is empty"),
    (dict(widths=[100000000000]), "zoo.widths: 100000000000 is not allowed; expected an integer from 1 to 65,536"),
    # every other axis: empty, wrong type, bool, out of range, not a list
    (dict(widths=[]), "zoo.widths: the list is empty"),
    (dict(widths=[0]), "zoo.widths: 0 is not allowed"),
    (dict(widths=[65537]), "at most 65,536"),
    (dict(widths=[8.5]), "zoo.widths: 8.5 is not allowed"),
    (dict(widths=[True]), "a bool is not a number"),
    (dict(depths=[65]), "zoo.depths: 65 is not allowed; expected an integer from 1 to 64"),
    (dict(depths=[]), "zoo.depths: the list is empty"),
    (dict(epochs=[-1]), "zoo.epochs: -1 is not allowed; expected an integer from 0 to 10,000"),
    (dict(epochs=[True]), "zoo.epochs: True is not allowed"),
    (dict(epochs=[10001]), "zoo.epochs: 10001 is not allowed"),
    (dict(epochs=["3"]), "zoo.epochs: '3' is not allowed"),
    (dict(epochs=[]), "zoo.epochs: the list is empty"),
    (dict(train_fractions=[0.0]), "zoo.train_fractions: 0.0 is not allowed; expected a number in (0, 1]"),
    (dict(train_fractions=[1.5]), "zoo.train_fractions: 1.5 is not allowed"),
    (dict(train_fractions=[True]), "a bool is not a number"),
    (dict(train_fractions=[float("nan")]), "zoo.train_fractions: nan is not allowed"),
    (dict(recipes=[]), "zoo.recipes: the list is empty"),
    (dict(recipes=["sam"]), "zoo.recipes: unknown recipe 'sam'; expected one of ['erm'"),
    (dict(recipes=[3]), "zoo.recipes: 3 is not allowed"),
    (dict(families=["vit9"]), "zoo.families: unknown model family 'vit9'; expected one of ['logreg'"),
    (dict(families="mlp"), "zoo.families: 'mlp' is not a list"),
    (dict(seeds=3), "zoo.seeds: 3 is not a list; expected a list, each value an integer from 0 to 2,147,483,647 (for one value write [3])"),
    (dict(seeds=[-1]), "zoo.seeds: -1 is not allowed"),
    (dict(seeds=[2**31]), "zoo.seeds: 2147483648 is not allowed"),
    (dict(seeds=[False]), "a bool is not a number"),
    (dict(seeds=[0.5]), "zoo.seeds: 0.5 is not allowed"),
    # the fixed training settings
    (dict(lr=0), "zoo.lr: 0 is not allowed; expected a number > 0"),
    (dict(lr=-0.1), "zoo.lr: -0.1 is not allowed"),
    (dict(lr=True), "zoo.lr: True is not allowed"),
    (dict(lr="abc"), "zoo.lr: 'abc' is not allowed"),
    (dict(lr=float("inf")), "zoo.lr: inf is not allowed"),
    (dict(lr=[0.1, 0.01]), "zoo.lr: [0.1, 0.01] is not allowed"),
    (dict(batch_size=0), "zoo.batch_size: 0 is not allowed; expected an integer from 1 to 65,536"),
    (dict(batch_size=10**9), "zoo.batch_size: 1000000000 is not allowed"),
    (dict(batch_size=64.0), "zoo.batch_size: 64.0 is not allowed"),
    (dict(weight_decay=-1e-4), "zoo.weight_decay: -0.0001 is not allowed; expected a number >= 0"),
    (dict(weight_decay=True), "zoo.weight_decay: True is not allowed"),
    (dict(early_stopping=True), "zoo.early_stopping: True is not allowed"),
    (dict(early_stopping=-2), "zoo.early_stopping: -2 is not allowed"),
    (dict(early_stopping=2.5), "zoo.early_stopping: 2.5 is not allowed"),
    # family and recipe settings
    (dict(family_options=[1]), "zoo.family_options: [1] is not a mapping"),
    (dict(family_options={"vit9": {"patch": 2}}), "zoo.family_options: unknown model family 'vit9'"),
    (dict(family_options={"mlp": {"k": 3}}), "zoo.family_options.mlp: family 'mlp' has no settings"),
    (dict(family_options={"vit": {"patchsize": 2}}), "zoo.family_options.vit: unknown setting 'patchsize' of family 'vit'; expected one of ['patch', 'heads']"),
    (dict(family_options={"vit": 2}), "zoo.family_options.vit: 2 is not a mapping"),
    (dict(family_options={"vit": {"patch": 0}}), "zoo.family_options.vit.patch: 0 is not allowed"),
    (dict(family_options={"vit": {"patch": []}}), "zoo.family_options.vit.patch: the list is empty"),
    (dict(family_options={"vit": {"heads": [2, True]}}), "zoo.family_options.vit.heads: True is not allowed"),
    (dict(family_options={"knn": {"k": 0}}), "zoo.family_options.knn.k: 0 is not allowed"),
    (dict(family_options={"random_forest": {"n_trees": 10**6}}), "zoo.family_options.random_forest.n_trees: 1000000 is not allowed"),
    (dict(family_options={"random_forest": {"max_depth": 0}}), "zoo.family_options.random_forest.max_depth: 0 is not allowed"),
    (dict(family_options={"linear_svm": {"C": 0}}), "zoo.family_options.linear_svm.C: 0 is not allowed; expected a number > 0"),
    (dict(family_options={"random_features": {"bandwidth": -1.0}}), "zoo.family_options.random_features.bandwidth: -1.0 is not allowed"),
    (dict(recipe_options={"sam": {}}), "zoo.recipe_options: unknown recipe 'sam'"),
    (dict(recipe_options={"erm": {"alpha": 1}}), "zoo.recipe_options.erm: recipe 'erm' has no settings"),
    (dict(recipe_options={"augmix": {"opz": "rotate"}}), "zoo.recipe_options.augmix: unknown setting 'opz' of recipe 'augmix'"),
    (dict(recipe_options={"augmix": {"ops": "rotate,fog"}}),
     "zoo.recipe_options.augmix.ops: 'rotate,fog' is not allowed; expected comma-separated names from ['autocontrast'"),
    (dict(recipe_options={"augmix": {"ops": ""}}), "zoo.recipe_options.augmix.ops: '' is not allowed"),
    (dict(recipe_options={"augmix": {"ops": ["rotate", "contrast"]}}), "zoo.recipe_options.augmix.ops: 'contrast' is not allowed"),
    (dict(recipe_options={"augmix": {"max_severity": 11}}), "zoo.recipe_options.augmix.max_severity: 11 is not allowed; expected a number in [0.1, 10]"),
    (dict(recipe_options={"augmix": {"width_mix": 0}}), "zoo.recipe_options.augmix.width_mix: 0 is not allowed"),
    (dict(recipe_options={"augment": {"flip": 1}}), "zoo.recipe_options.augment.flip: 1 is not allowed; expected true or false"),
    (dict(recipe_options={"augment": {"noise": -0.1}}), "zoo.recipe_options.augment.noise: -0.1 is not allowed"),
    (dict(recipe_options={"label_smoothing": {"smoothing": 1.0}}), "zoo.recipe_options.label_smoothing.smoothing: 1.0 is not allowed; expected a number in [0, 1)"),
    (dict(recipe_options={"mixup": {"alpha": 0}}), "zoo.recipe_options.mixup.alpha: 0 is not allowed"),
    (dict(recipe_options={"pgd_at": {"eps": 2.0}}), "zoo.recipe_options.pgd_at.eps: 2.0 is not allowed; expected a number in (0, 1]"),
    (dict(recipe_options={"trades": {"steps": 0}}), "zoo.recipe_options.trades.steps: 0 is not allowed"),
    (dict(recipe_options={"groupdro": {"eta": 0}}), "zoo.recipe_options.groupdro.eta: 0 is not allowed"),
    (dict(recipe_options={"finetune": {"pretrain": "imagenet"}}), "zoo.recipe_options.finetune.pretrain: unknown dataset 'imagenet'"),
    (dict(recipe_options={"finetune": {"pretrain_shift": "rotaton"}}), "zoo.recipe_options.finetune.pretrain_shift: unknown shift 'rotaton'"),
    (dict(recipe_options={"finetune": {"pretrain_severity": 6}}), "zoo.recipe_options.finetune.pretrain_severity: 6 is not allowed; expected a number in [0, 5]"),
    (dict(recipe_options={"finetune": {"pretrain_epochs": 0}}), "zoo.recipe_options.finetune.pretrain_epochs: 0 is not allowed"),
    # keys and the large-zoo confirmation
    (dict(seed=[0]), "zoo.seed: not a zoo setting; expected keys from ['families'"),
    (dict(confirm_large="yes"), "zoo.confirm_large: 'yes' is not allowed; expected true or false"),
    (dict(seeds=list(range(3000))), "zoo: 90,000 models (from families: 3, widths: 2, depths: 1, epochs: 2, train_fractions: 3, recipes: 1, "
                                    "seeds: 3,000) is more than 1,000"),
    (dict(seeds=list(range(34))), "set zoo.confirm_large=true"),
]


@pytest.mark.parametrize("change, msg", BAD, ids=[m[:60] for _, m in BAD])
def test_bad_zoo_value_is_refused_with_its_name(change, msg):
    with pytest.raises(ValueError) as e:
        zoo_grid({**ZOO, **change})
    assert msg in str(e.value), str(e.value)


@pytest.mark.parametrize("missing", ["families", "seeds", "widths", "epochs"])
def test_required_keys(missing):
    with pytest.raises(ValueError, match=f"zoo.{missing} is missing"):
        zoo_grid({k: v for k, v in ZOO.items() if k != missing})


def test_what_is_not_required():
    # no widths for logistic regression and the classic models, no epochs for the classic models
    assert len(zoo_grid(dict(families=["logreg"], epochs=[1, 2], seeds=[0, 1]))) == 4
    assert len(zoo_grid(dict(families=["knn", "linear_svm"], seeds=[0]))) == 2


def test_good_zoos_pass_and_are_counted_exactly():
    assert len(zoo_grid(ZOO)) == zoo_size(ZOO) == 60
    rich = dict(ZOO, families=["logreg", "mlp", "vit", "knn"], recipes=["erm", "augmix", "finetune"], early_stopping=0,
                family_options={"vit": {"patch": [2, 4], "heads": 2}, "knn": {"k": [1, 5]}},
                recipe_options={"augmix": {"ops": ["rotate,shear_x", "solarize"], "max_severity": 3}, "finetune": {"pretrain_shift": None}})
    assert len(zoo_grid(rich)) == zoo_size(rich)
    rep = dict(ZOO, seeds=[0, 0, 1], widths=[8, 8])                               # repeated values count once:
    assert len(zoo_grid(rep)) == zoo_size(rep) == 3 * 2 * 3 * 2                   # 3 families × 2 epochs × 3 fractions × 2 seeds


def test_large_zoo_needs_confirmation():
    n_seeds = LARGE_ZOO // 30 + 1                                              # the default zoo has 30 models per seed
    large = dict(ZOO, seeds=list(range(n_seeds)))
    assert zoo_size(large) > LARGE_ZOO
    with pytest.raises(ValueError, match=f"zoo: {zoo_size(large):,} models"):
        zoo_grid(large)
    assert len(zoo_grid(dict(large, confirm_large=True))) == zoo_size(large)
    assert len(zoo_grid(dict(ZOO, seeds=list(range(LARGE_ZOO // 30))))) <= LARGE_ZOO   # at the threshold: no question


@pytest.mark.parametrize("change, msg", [
    (dict(depth=-1), "depth: -1 is not allowed"), (dict(depth=0), "depth: 0 is not allowed"),
    (dict(width=100000000000), "width: 100000000000 is not allowed"), (dict(width=None), "width: None is not allowed"),
    (dict(epochs=True), "epochs: True is not allowed"), (dict(seed=True), "seed: True is not allowed"),
    (dict(train_fraction=True), "train_fraction: True is not allowed"), (dict(lr=0), "lr: 0 is not allowed"),
    (dict(batch_size=0), "batch_size: 0 is not allowed"), (dict(early_stopping=True), "early_stopping: True is not allowed"),
    (dict(recipe="augmix", ops="rotate,fog"), "ops: 'rotate,fog' is not allowed"),
    (dict(family="vit", patch=True), "patch: True is not allowed"),
])
def test_check_config_checks_every_setting(change, msg):
    cfg = dict(family="mlp", width=8, depth=1, epochs=1, train_fraction=1.0, recipe="erm", seed=0, lr=0.01, batch_size=32, weight_decay=0.0)
    with pytest.raises(ValueError, match=None) as e:
        check_config({**cfg, **change})
    assert msg in str(e.value) and "in model config" in str(e.value), str(e.value)


def test_check_config_refuses_a_network_too_large_to_allocate():
    cfg = dict(family="mlp", width=65536, depth=4, epochs=1, train_fraction=1.0, recipe="erm", seed=0, lr=0.01, batch_size=32)
    check_config(cfg)                                                           # each value is allowed ...
    with pytest.raises(ValueError, match="parameters for \\(3, 224, 224\\) images; at most 1,000,000,000"):
        check_config(cfg, (3, 224, 224))                                        # ... but not the network they make
