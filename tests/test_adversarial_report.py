"""The adversarial report end to end on the shared tiny study: budgets labelled as given, one 'on the line' panel per
budget, PGD <= FGSM <= clean image by image, APGD (the Adversarial Robustness Toolbox) on a named budget at or below
PGD, ART's PGD agreeing with robstudy's, no stray lines in the page, names from data escaped, and bad parameters
refused before anything runs. And, without the report, ART's attacks against robstudy's on one of the study's models."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED as TINY, copy_study, run_robstudy

HOSTILE = "<img src=x onerror=alert(1)>"
# a quick budget: two budgets (one a fraction), 2 models per family on 300 images, APGD on the most accurate of each
# family, 100 images, 20 iterations, 2 target classes
QUICK = ["report.notebooks=[adversarial]", "report.force=true", '+report.parameters.adversarial.epsilons=["8/255",0.1]',
         "+report.parameters.adversarial.models_per_family=2", "+report.parameters.adversarial.max_examples=300",
         "+report.parameters.adversarial.aa_examples=100",
         "+report.parameters.adversarial.aa_iterations=20", "+report.parameters.adversarial.aa_targets=2"]
APGD_SLACK = 0.02   # APGD may find at most this fraction of images fewer than PGD (independent random starts)


def bits(hexstr: str, n: int) -> np.ndarray:
    "Per-image booleans from the report's packed hex."
    return np.unpackbits(np.frombuffer(bytes.fromhex(hexstr), np.uint8))[:n].astype(bool)


def check_report(out, tables_dir, labels):
    "Everything a rendered adversarial report must satisfy; returns its key figures and its page."
    from robstudy.summary import setting_ids
    from robstudy.tables import Tables
    figs = json.loads((out / "adversarial.json").read_text())
    html = (out / "adversarial.html").read_text()
    nb = json.loads((out / "adversarial.ipynb").read_text())
    # budgets as given, in order, never rounded ("ε = 0.0")
    assert figs["epsilon_labels"] == labels
    assert figs["figure_labels"]["budget_curves"]["xticklabels"] == ["0", *labels]
    assert not re.search(r"ε ?= ?0\.0\b(?![0-9])", html)
    # no stray lines: nothing printed to stdout or stderr, no errors, no progress lines, no dict dumps in the page
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] in ("stream", "error")], [o.get("text") for o in outputs if o["output_type"] == "stream"]
    assert not re.search(r"attacked \d+/\d+|\d+/\d+ models", html) and "key figures ->" not in html
    assert not [o for o in outputs if "text/plain" in o.get("data", {}) and re.match(r"\s*[{\[]", o["data"]["text/plain"] if isinstance(o["data"]["text/plain"], str) else "".join(o["data"]["text/plain"]))]
    # axes say what they show: robust accuracy under an attack; one 'on the line' panel per budget
    assert all(y.startswith("robust accuracy (") for y in figs["figure_labels"]["budget_curves"]["ylabels"])
    line = figs["figure_labels"]["on_the_line"]
    assert line["titles"] == [f"PGD, ε = {lab}" for lab in labels]
    for lab, ylabel in zip(labels, line["ylabels"]):
        assert ylabel.startswith(f"robust accuracy (PGD, ε={lab})"), ylabel
    assert "OOD accuracy" not in json.dumps(figs["figure_labels"])
    # per image: PGD <= FGSM <= clean, and the counts behind every accuracy are these images
    n, per = figs["per_example"]["n"], figs["per_example"]["flags"]
    tables = Tables.load(tables_dir)
    clean_eval = tables.evals[tables.evals.setting_id == setting_ids(tables, role="id")[0]].set_index("model_id")
    assert figs["n_models"] == len(per) and figs["n_study_models"] == len(tables.models) and set(per) <= set(tables.models.model_id)
    acc = pd.DataFrame(figs["per_model"]).set_index(["model_id", "attack", "eps_label"])
    for mid, f in per.items():
        clean = bits(f["clean"], n)
        if n == clean_eval.n[mid]: assert clean.sum() == clean_eval.correct[mid], mid   # the study's own clean evaluation
        for lab in labels:
            fg, pg = bits(f[f"fgsm@{lab}"], n), bits(f[f"pgd@{lab}"], n)
            assert not (fg & ~clean).any(), (mid, lab, "FGSM > clean")
            assert not (pg & ~fg).any(), (mid, lab, f"PGD > FGSM on {int((pg & ~fg).sum())} images")
            assert acc.correct[mid, "fgsm", lab] == fg.sum() and acc.correct[mid, "pgd", lab] == pg.sum()
            assert acc.accuracy[mid, "pgd", lab] <= acc.accuracy[mid, "fgsm", lab] <= figs["clean_accuracy"][mid]
    assert figs["ordering_violations"] == {"pgd>fgsm": 0, "pgd>clean": 0, "fgsm>clean": 0}
    # AutoAttack-style APGD (ART): on the budget it names, at or below PGD on the same images
    aa = figs["autoattack"]
    assert aa["mode"] == "apgd" and aa["library"].startswith("adversarial-robustness-toolbox ")
    assert aa["per_model"] and set(aa["epsilon_labels"]) <= set(labels) and set(aa["models"]) <= set(per)
    assert {(r["model_id"], r["eps_label"]) for r in aa["per_model"]} == {(m, lab) for m in aa["models"] for lab in aa["epsilon_labels"]}
    budget_line = (f"APGD-CE ({aa['iterations']} iterations, 1 random start) and APGD-T ({aa['targets']} target classes × "
                   f"{aa['iterations']} iterations) at ε = {', '.join(aa['epsilon_labels'])}, on the first {aa['n_examples']} test images of "
                   f"{len(aa['models'])} of the {len(per)} attacked models")
    assert aa["budget"].startswith(budget_line) and html.count(budget_line) >= 2, budget_line   # in the header and above the table
    assert "APGD-CE + APGD-T %" in html
    for r in aa["per_model"]:
        m = r["n"]
        assert m == aa["n_examples"]
        rob = bits(aa["per_example"][r["model_id"]][r["eps_label"]], m)
        pg = bits(per[r["model_id"]][f"pgd@{r['eps_label']}"], n)[:m]
        assert not (rob & ~bits(per[r["model_id"]]["clean"], n)[:m]).any()
        assert r["autoattack"] == pytest.approx(rob.mean()) and r["pgd"] == pytest.approx(pg.mean())
        assert r["autoattack"] <= r["apgd_ce"] <= r["clean"] and r["worst_case"] <= min(r["autoattack"], r["pgd"])
        assert rob.mean() <= pg.mean() + APGD_SLACK, r
    # ART's PGD agrees with robstudy's on the same models and budgets
    cross = figs["cross_check"]
    assert {(r["model_id"], r["eps_label"]) for r in cross["rows"]} == {(m, lab) for m in aa["models"] for lab in aa["epsilon_labels"]}
    assert cross["tolerance"] == 0.03 and cross["all_agree"] is True
    for r in cross["rows"]:
        ours = bits(per[r["model_id"]][f"pgd@{r['eps_label']}"], n).mean()
        assert r["robstudy_pgd"] == pytest.approx(ours)
        assert abs(ours - r["art_pgd"]) <= cross["tolerance"], r
    assert "Cross-check of robstudy's PGD against ART's" in html
    assert set(figs["timing"]) == {"FGSM + PGD (robstudy)", "APGD-CE + APGD-T (ART)", "PGD cross-check (ART)"}
    return figs, html


@pytest.fixture(scope="module")
def quick(shared_study, tmp_path_factory):
    "A copy of the shared study, a model family renamed to a hostile string, reported with the quick budget."
    d = copy_study(shared_study, tmp_path_factory.mktemp("adv") / "study")
    models = d / "runs/digits/tables/models.parquet"
    m = pd.read_parquet(models)
    m["family"] = m.family.replace({"mlp": HOSTILE})
    m.to_parquet(models, index=False)
    r = run_robstudy("report", *TINY, *QUICK, cwd=d)
    return dict(dir=d, out=d / "reports/digits", run=r)


@pytest.mark.slow
def test_quick_budget_labelled_as_given_and_checked(quick):
    r = quick["run"]
    assert r.returncode == 0, r.stdout + r.stderr
    figs, html = check_report(quick["out"], quick["dir"] / "runs/digits/tables", ["8/255", "0.1"])
    assert figs["epsilons"] == [8 / 255, 0.1]
    assert "ε = 8/255 ≈ 0.0314, 0.1." in html
    # 2 models per family, spread over clean accuracy: each family's least and most accurate; APGD on the most accurate
    from robstudy.summary import setting_ids
    from robstudy.tables import Tables
    tables = Tables.load(quick["dir"] / "runs/digits/tables")
    ev = tables.evals[tables.evals.setting_id == setting_ids(tables, role="id")[0]]
    zoo = tables.models.merge(ev[["model_id", "accuracy"]], on="model_id").sort_values(["accuracy", "model_id"], ascending=[False, True])
    chosen = zoo[zoo.model_id.isin(figs["clean_accuracy"])]
    assert figs["n_models"] == 4 and figs["models_per_family"] == 2 and chosen.family.value_counts().to_dict() == {"logreg": 2, HOSTILE: 2}
    for fam, g in zoo.groupby("family"):
        assert sorted(chosen[chosen.family == fam].accuracy) == [g.accuracy.min(), g.accuracy.max()], fam
    assert "4 of the study's 8 models (2 per family, spread over clean accuracy: models_per_family=2), on the first 300 of its 539 test images (max_examples=300)" in html
    assert figs["n_examples"] == 300 and figs["n_test_images"] == 539
    assert "the study's tables count all 539 test images, so the clean accuracy on the first 300 is not compared with them" in html
    aa = figs["autoattack"]
    assert aa["iterations"] == 20 and aa["targets"] == 2 and aa["epsilon_labels"] == ["0.1"] and aa["n_examples"] == 100
    assert sorted(aa["models"]) == sorted(chosen.groupby("family").head(1).model_id)
    # the renamed family reaches the page's tables only as text
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_default_budget_in_the_shared_study(shared_study):
    assert shared_study["report"]["returncode"] == 0, shared_study["report"]["stdout"] + shared_study["report"]["stderr"]
    figs, html = check_report(shared_study["dir"] / "reports/digits", shared_study["dir"] / "runs/digits/tables", ["0.03", "0.1", "0.2"])
    assert "ε = 0.03, 0.1, 0.2." in html and figs["n_models"] == 8 and figs["n_examples"] == figs["n_test_images"] == 539
    assert "the clean accuracy measured here equals the study's tables for 8 of 8 models." in html
    aa = figs["autoattack"]
    assert aa["iterations"] == 100 and aa["targets"] == 3 and aa["epsilon_labels"] == ["0.1"]
    assert len(aa["models"]) == 2 and aa["n_examples"] == 200 and "(the most accurate of each family)" in aa["budget"]


def checked(**overrides):
    "Run the report's parameters cell, `overrides` (as papermill injects them) and its checking cell; returns the namespace."
    from conftest import ROOT
    cells = [c for c in json.loads((ROOT / "nbs/reports/adversarial.ipynb").read_text())["cells"] if c["cell_type"] == "code"]
    params, check = ("".join(c["source"]) for c in cells[:2])
    assert "parameters" in cells[0]["metadata"]["tags"] and "import torch" not in check and "write" not in check
    ns = {}
    exec(params, ns)
    ns.update(overrides)
    exec(check, ns)
    return ns


@pytest.mark.parametrize("override, expect", [
    (dict(epsilons=[0.1, "8/0"]), "epsilons: cannot read '8/0' as a budget; expected a number or a fraction such as '8/255'"),
    (dict(epsilons=[0.1, "a/b"]), "epsilons: cannot read 'a/b' as a budget"),
    (dict(epsilons=[0.0, 0.1]), "epsilons: budget 0.0 = 0 is outside (0, 1]"),
    (dict(epsilons=[0.1, "1/10"]), "names a budget twice"),
    (dict(epsilons=[]), "epsilons must be a non-empty list of budgets, got []"),
    (dict(epsilons=[True]), "epsilons: each budget must be a number or a fraction such as '8/255', got True"),
    (dict(pgd_restarts=0), "pgd_restarts must be an integer >= 1, got 0"),
    (dict(models_per_family=True), "models_per_family must be an integer >= 0, got True"),
    (dict(max_examples=-1), "max_examples must be an integer >= 0, got -1"),
    (dict(autoattack="fast"), "autoattack must be 'apgd', 'full' or 'none', got 'fast'"),
    (dict(aa_epsilons=[0.5]), "aa_epsilons must be a list of budgets from epsilons ['0.03', '0.1', '0.2'], got [0.5]"),
    (dict(cross_check_tolerance=2), "cross_check_tolerance must be a fraction in [0, 1], got 2"),
])
def test_bad_parameters_are_refused_before_any_work(override, expect):
    with pytest.raises(ValueError) as e:
        checked(**override)
    assert expect in str(e.value), str(e.value)


def test_budgets_keep_their_labels():
    ns = checked(epsilons=[0.1, "8/255", 0.2])
    assert ns["budgets"] == {"8/255": 8 / 255, "0.1": 0.1, "0.2": 0.2} and list(ns["budgets"]) == ["8/255", "0.1", "0.2"]
    assert ns["aa_budgets"] == ["0.1"]                                                   # the middle one by default
    assert checked(epsilons=[0.1, "8/255", 0.2], aa_epsilons=[0.2, 8 / 255])["aa_budgets"] == ["0.2", "8/255"]   # matched by value
    assert checked(autoattack="full")["aa_budgets"] == ["0.03", "0.1", "0.2"]


@pytest.fixture(scope="module")
def digits_mlp(shared_study):
    "The shared study's most accurate MLP (trained on the real digits), and 200 of its test images and labels."
    from robstudy.checkpoints import load_checkpoint
    from robstudy.datasets import load_dataset
    from robstudy.store import ResultsStore
    from robstudy.summary import setting_ids
    from robstudy.tables import Tables
    runs = shared_study["dir"] / "runs/digits"
    tables = Tables.load(runs / "tables")
    ev = tables.evals[tables.evals.setting_id == setting_ids(tables, role="id")[0]].merge(tables.models, on="model_id")
    mid = ev[ev.family == "mlp"].sort_values(["accuracy", "model_id"]).model_id.iloc[-1]
    model = load_checkpoint(ResultsStore(runs).model_stem(mid), "cpu", expected_id=mid)[0]
    for q in model.parameters(): q.requires_grad_(False)
    ds = load_dataset("digits")
    return model, ds.x_test[:200], ds.y_test[:200]


@pytest.mark.slow
def test_art_attacks_agree_with_robstudys_pgd(digits_mlp):
    "ART's APGD-CE is at least as strong as robstudy's PGD (within a little slack); ART's PGD, same settings, agrees with it."
    import torch
    from art.attacks.evasion import AutoProjectedGradientDescent, ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier
    from robstudy.adversarial import robust_flags
    model, x, y = digits_mlp
    eps, steps, restarts = 0.1, 10, 2
    clean, fg, pg = (t.numpy() for t in robust_flags(model, x, y, eps, steps=steps, restarts=restarts, seed=0))
    assert clean.mean() > 0.8 and pg.mean() < clean.mean() - 0.2, "a trained model, and an attack that bites"
    clf = PyTorchClassifier(model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0))
    xn, yn = x.numpy(), y.numpy()

    def robust(attack):
        xa = attack.generate(xn, yn)
        assert np.abs(xa - xn).max() <= eps + 1e-6 and xa.min() >= 0 and xa.max() <= 1   # inside the ball and the image range
        return clean & (model(torch.as_tensor(xa)).argmax(1).numpy() == yn)

    np.random.seed(0)
    apgd = robust(AutoProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=50, nb_random_init=1,
                                               loss_type="cross_entropy", verbose=False))
    art_pgd = robust(ProjectedGradientDescentPyTorch(clf, norm=np.inf, eps=eps, eps_step=2.5 * eps / steps, max_iter=steps,
                                                     num_random_init=restarts, verbose=False))
    assert apgd.mean() <= pg.mean() + APGD_SLACK, (apgd.mean(), pg.mean())
    assert abs(art_pgd.mean() - pg.mean()) <= 0.03, (art_pgd.mean(), pg.mean())
    assert (art_pgd == pg).mean() >= 0.9   # the same images fall, nearly all of them
