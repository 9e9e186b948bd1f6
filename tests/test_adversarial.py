"""Issue 16, item 11: per example, PGD keeps a misclassified candidate (its FGSM start, the clean image or any
restart) whenever there is one, else the highest-loss one; so, per example, PGD-correct implies FGSM-correct
implies clean-correct, on any model."""
import itertools

import pytest
import torch
from torch import nn

import robstudy.adversarial as adv


@torch.no_grad()
def correct(model, x, y): return model(x).argmax(1) == y


def mlp(seed, classes=3, width=256, depth=1, channels=1):
    torch.manual_seed(seed)
    layers, w = [nn.Flatten()], channels * 64
    for _ in range(depth): layers += [nn.Linear(w, width), nn.ReLU()]; w = width
    return nn.Sequential(*layers, nn.Linear(w, classes)).eval()


def cnn(seed, classes=3, channels=1):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(channels, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 16, classes)).eval()


def test_reported_case_seed0_random_3class_mlp():
    "The report: a seed-0 random 3-class MLP failed robust_accuracy's own check with `PGD 137 <= FGSM 136`."
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 3))
    x = torch.rand(256, 1, 8, 8)
    with torch.no_grad(): y = model(x).argmax(1)                       # every example clean-correct
    res = adv.robust_accuracy(model, x, y, eps_list=(0.03,))          # raised AssertionError before the fix
    assert res.pgd.iloc[0] <= res.fgsm.iloc[0] <= res.clean.iloc[0]
    xf, xp = adv.fgsm(model, x, y, 0.03), adv.pgd(model, x, y, 0.03)
    cf, cp = correct(model, xf, y), correct(model, xp, y)
    assert not (cp & ~cf).any(), f"PGD correct where FGSM is not: examples {(cp & ~cf).nonzero()[:, 0].tolist()}"


MODELS = {  # random weights: near-uniform predictions, where "highest loss" and "misclassified" part ways most often
    "mlp3": lambda s: (mlp(s, 3, 64), 1, 3), "mlp3-deep": lambda s: (mlp(s, 3, 32, depth=2), 1, 3),
    "mlp10-rgb": lambda s: (mlp(s, 10, 64, channels=3), 3, 10), "cnn3": lambda s: (cnn(s, 3), 1, 3),
    "cnn10-rgb": lambda s: (cnn(s, 10, channels=3), 3, 10),
}
EPS = {"linf": (0.01, 0.03, 0.1, 0.3), "l2": (0.1, 0.3, 1.0, 3.0)}


def cases(norm, seeds=range(2)):
    for (name, make), seed in itertools.product(MODELS.items(), seeds):
        model, c, k = make(seed)
        g = torch.Generator().manual_seed(100 + seed)
        x = torch.rand(96, c, 8, 8, generator=g)
        # labels: the model's own predictions (all clean-correct) for two thirds, random (mostly wrong) for the rest
        with torch.no_grad(): y = torch.cat([model(x[:64]).argmax(1), torch.randint(0, k, (32,), generator=g)])
        for eps in EPS[norm]: yield f"{name} seed {seed} eps {eps}", model, x, y, eps


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_never_beats_fgsm_or_clean_per_example(norm):
    "Per example, on random MLPs and CNNs: PGD-correct implies FGSM-correct and clean-correct; PGD stays in the ball."
    bad = []
    for label, model, x, y, eps in cases(norm):
        xp = adv.pgd(model, x, y, eps, norm, steps=4, restarts=2, seed=1)
        c, cf, cp = correct(model, x, y), correct(model, adv.fgsm(model, x, y, eps, norm), y), correct(model, xp, y)
        if (cp & ~cf).any() or (cp & ~c).any():
            bad.append(f"{label}: PGD correct where FGSM is not on {int((cp & ~cf).sum())}, where clean is not on {int((cp & ~c).sum())}")
        d = (xp - x).flatten(1)
        assert (d.abs().amax(1) if norm == "linf" else d.norm(dim=1)).max() <= eps * (1 + 1e-5) + 1e-6, label
        assert xp.min() >= 0 and xp.max() <= 1, label
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_robust_flags_ordered_per_example(norm):
    "robust_accuracy's per-example flags: PGD <= FGSM <= clean for every example; the PGD flags are `pgd`'s images, scored."
    for label, model, x, y, eps in cases(norm, seeds=[0]):
        c, f, p = adv.robust_flags(model, x, y, eps, norm, steps=4, restarts=2, seed=1)
        assert not (f & ~c).any() and not (p & ~f).any(), label
        assert torch.equal(c, correct(model, x, y)), label
        assert torch.equal(f, c & correct(model, adv.fgsm(model, x, y, eps, norm), y)), label
        assert torch.equal(p, correct(model, adv.pgd(model, x, y, eps, norm, steps=4, restarts=2, seed=1), y)), label
    res = adv.robust_accuracy(model, x, y, eps_list=(eps,), norm=norm, steps=4, restarts=2, seed=1)
    assert (res.clean.iloc[0], res.fgsm.iloc[0], res.pgd.iloc[0]) == tuple(t.float().mean().item() for t in (c, f, p))


def test_fgsm_column_keeps_a_misclassified_clean_image():
    "A signed-gradient step can turn a wrong prediction right (here: 1 of 465 wrong examples); the clean image is in the ball, so FGSM counts it wrong."
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    x = torch.rand(512, 1, 8, 8); y = torch.randint(0, 10, (512,))
    raw = correct(model, adv.fgsm(model, x, y, 0.6), y) & ~correct(model, x, y)
    assert raw.sum() == 1, "the seeded case no longer has a wrong example that FGSM's step makes right"
    c, f, p = adv.robust_flags(model, x, y, 0.6)
    assert not f[raw].any() and not p[raw].any()
    assert not correct(model, adv.pgd(model, x, y, 0.6), y)[raw].any()
