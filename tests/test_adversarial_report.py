"""The adversarial report end to end on the shared tiny study: budgets labelled as given, PGD <= FGSM <= clean image by
image, APGD (the Adversarial Robustness Toolbox) at or below PGD, ART's PGD agreeing with robstudy's, no stray lines in
the page, names from data escaped, and bad parameters refused before anything runs."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED as TINY, copy_study, run_robstudy

HOSTILE = "<img src=x onerror=alert(1)>"
# a quick budget: two budgets (one a fraction), APGD on 2 models x 200 images, 20 iterations, 2 target classes
QUICK = ["report.notebooks=[adversarial]", "report.force=true", '+report.parameters.adversarial.epsilons=["8/255",0.1]',
         "+report.parameters.adversarial.aa_models=2", "+report.parameters.adversarial.aa_examples=200",
         "+report.parameters.adversarial.aa_iterations=20", "+report.parameters.adversarial.aa_targets=2"]
APGD_SLACK = 0.02   # APGD may find at most this fraction of images fewer than PGD (independent random starts)


def bits(hexstr: str, n: int) -> np.ndarray:
    "Per-image booleans from the report's packed hex."
    return np.unpackbits(np.frombuffer(bytes.fromhex(hexstr), np.uint8))[:n].astype(bool)


def check_report(out, tables_dir, labels):
    "Everything a rendered adversarial report must satisfy; returns its key figures."
    from robstudy.summary import setting_ids
    from robstudy.tables import Tables
    figs = json.loads((out / "adversarial.json").read_text())
    html = (out / "adversarial.html").read_text()
    nb = json.loads((out / "adversarial.ipynb").read_text())
    # budgets as given, in order, with their true values
    assert figs["epsilon_labels"] == labels
    assert figs["figure_labels"]["budget_curves"]["xticklabels"] == ["0", *labels]
    # no stray lines: nothing printed to stdout or stderr, no errors, no progress lines in the page
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] in ("stream", "error")], [o.get("text") for o in outputs if o["output_type"] == "stream"]
    assert not re.search(r"attacked \d+/\d+", html) and "key figures ->" not in html
    # one 'on the line' panel per budget, its y-axis naming the attack and the budget as given
    line = figs["figure_labels"]["on_the_line"]
    assert [t for t in line["titles"]] == [f"PGD, ε = {lab}" for lab in labels]
    for lab, ylabel in zip(labels, line["ylabels"]):
        assert ylabel.startswith(f"robust accuracy (PGD, ε={lab})"), ylabel
    assert all(y.startswith("robust accuracy (") for y in figs["figure_labels"]["budget_curves"]["ylabels"])
    # per image: PGD <= FGSM <= clean, and the counts behind every accuracy are these images
    n, per = figs["per_example"]["n"], figs["per_example"]["flags"]
    tables = Tables.load(tables_dir)
    clean_eval = tables.evals[tables.evals.setting_id == setting_ids(tables, role="id")[0]].set_index("model_id")
    assert figs["n_models"] == len(per) == len(tables.models)
    acc = pd.DataFrame(figs["per_model"]).set_index(["model_id", "attack", "eps_label"])
    for mid, f in per.items():
        clean = bits(f["clean"], n)
        assert clean.sum() == clean_eval.correct[mid] and n == clean_eval.n[mid], mid   # the study's own clean evaluation
        for lab in labels:
            fg, pg = bits(f[f"fgsm@{lab}"], n), bits(f[f"pgd@{lab}"], n)
            assert not (fg & ~clean).any(), (mid, lab, "FGSM > clean")
            assert not (pg & ~fg).any(), (mid, lab, f"PGD > FGSM on {int((pg & ~fg).sum())} images")
            assert acc.correct[mid, "fgsm", lab] == fg.sum() and acc.correct[mid, "pgd", lab] == pg.sum()
    assert figs["ordering_violations"] == {"pgd>fgsm": 0, "pgd>clean": 0, "fgsm>clean": 0}
    # AutoAttack-style APGD (ART): at or below PGD on the same images, for every model and budget it ran on
    aa = figs["autoattack"]
    assert aa["mode"] == "apgd" and aa["library"].startswith("adversarial-robustness-toolbox ")
    assert aa["per_model"] and set(aa["epsilon_labels"]) <= set(labels)
    for r in aa["per_model"]:
        m = r["n"]
        rob = bits(aa["per_example"][r["model_id"]][r["eps_label"]], m)
        pg = bits(per[r["model_id"]][f"pgd@{r['eps_label']}"], n)[:m]
        assert not (rob & ~bits(per[r["model_id"]]["clean"], n)[:m]).any()
        assert r["autoattack"] == pytest.approx(rob.mean()) and r["pgd"] == pytest.approx(pg.mean())
        assert rob.mean() <= pg.mean() + APGD_SLACK, r
    # ART's PGD agrees with robstudy's on the same model and budget
    cross = figs["cross_check"]
    assert cross["rows"] and cross["tolerance"] == 0.03
    for r in cross["rows"]:
        ours = bits(per[r["model_id"]][f"pgd@{r['eps_label']}"], n).mean()
        assert r["robstudy_pgd"] == pytest.approx(ours)
        assert abs(ours - r["art_pgd"]) <= cross["tolerance"], r
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


def test_quick_budget_labelled_as_given_and_checked(quick):
    r = quick["run"]
    assert r.returncode == 0, r.stdout + r.stderr
    figs, html = check_report(quick["out"], quick["dir"] / "runs/digits/tables", ["8/255", "0.1"])
    assert figs["epsilons"] == [8 / 255, 0.1]
    assert "ε = 8/255 ≈ 0.0314, 0.1." in html and "ε = 0.0 " not in html and "ε = 0.0," not in html
    assert figs["autoattack"]["iterations"] == 20 and figs["autoattack"]["epsilon_labels"] == ["0.1"]
    assert len(figs["autoattack"]["per_model"]) == 2 and all(r["n"] == 200 for r in figs["autoattack"]["per_model"])
    # the renamed family reaches the page's tables only as text
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_default_budget_in_the_shared_study(shared_study):
    assert shared_study["report"]["returncode"] == 0, shared_study["report"]["stdout"] + shared_study["report"]["stderr"]
    figs, html = check_report(shared_study["dir"] / "reports/digits", shared_study["dir"] / "runs/digits/tables", ["0.03", "0.1", "0.2"])
    assert "ε = 0.03, 0.1, 0.2." in html
    aa = figs["autoattack"]
    assert aa["iterations"] == 100 and aa["targets"] == 3 and aa["epsilon_labels"] == ["0.1"]
    assert len(aa["per_model"]) == 4 and {r["n"] for r in aa["per_model"]} == {500}


def test_a_budget_that_is_not_a_number_is_refused(shared_study, tmp_path):
    override, expect = '+report.parameters.adversarial.epsilons=[0.1,"8/0"]', "epsilons: cannot read '8/0' as a budget"
    d = copy_study(shared_study, tmp_path / "study")
    out = d / "reports/digits"
    r = run_robstudy("report", *TINY, "report.notebooks=[adversarial]", "report.force=true", override, cwd=d)
    assert r.returncode != 0 and expect in r.stdout + r.stderr, r.stdout + r.stderr
    rec = json.loads((out / "adversarial.record.json").read_text())
    assert rec["status"] == "failed" and expect in rec["error"]
    assert not (out / "adversarial.json").exists() and not (out / "adversarial.html").exists(), "nothing of a refused run"
