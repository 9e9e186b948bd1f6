"""The effective-robustness report as a reader gets it: vector figures inline with a hover title per model, their SVG and
PDF beside the page, tables for people (percent, readable model names, no hash ids) exported as CSV and LaTeX, seeds
aggregated in the ranking, no absolute paths; and names from data escaped wherever they reach markup.

Rendered once, on a private copy of the suite's shared study with a second seed for half of its zoo and hostile names
written into its tables (a model family and a shift), as a hand-edited or published table could carry them."""
import json
import re
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED, copy_study, run_robstudy

pytestmark = pytest.mark.slow   # reports re-rendered for their figures: the slow tier (make test-slow)

HOSTILE_FAMILY = "mlp<img src=x onerror=alert(1)>\\input{x}$a$"
HOSTILE_SHIFT = "rot<script>alert(2)</script>\\input{y}&"
FIGURES = ("trend", "shifts", "severity", "ranking")
TABLES = ("shifts", "ranking", "models")


@pytest.fixture(scope="module")
def rendered(shared_study, tmp_path_factory):
    from robstudy.reports import run_report
    from robstudy.tables import Tables
    d = copy_study(shared_study, tmp_path_factory.mktemp("report-figures") / "study")
    # a second seed for the 1-epoch half of the tiny zoo: 4 more models in the copy's store, 8 models in its tables
    r = run_robstudy("run", *SHARED, "zoo.seeds=[0,1]", "zoo.epochs=[1]", cwd=d)
    assert r.returncode == 0, r.stdout + r.stderr
    folder = d / "runs/digits/tables"
    t = Tables.load(folder)
    models, settings = t.models.copy(), t.settings.copy()
    models.loc[models.family == "mlp", "family"] = HOSTILE_FAMILY
    settings.loc[settings["shift"] == "rotation", "shift"] = HOSTILE_SHIFT
    Tables(models, settings, t.evals, t.meta).validate().save(folder)
    out = d / "reports/digits"
    rec = run_report("effective_robustness", {"study_dir": str(d / "runs/digits"), "config": {"study": {"name": "digits", "seed": 0}, "device": "cpu"}},
                     out, force=True)
    assert rec["status"] == "ok", rec.get("error")
    return dict(dir=d, out=out, html=(out / "effective_robustness.html").read_text(), tables=Tables.load(folder),
                figures=json.loads((out / "effective_robustness.json").read_text()))


def svgs(html):
    "The inline SVG figures of a page, parsed, with plain tag names (nbconvert writes them back lower-cased, as HTML may)."
    out = []
    for s in re.findall(r"<svg\b.*?</svg>", html, flags=re.S):
        root = ElementTree.fromstring(s)
        for el in root.iter(): el.tag = el.tag.split("}")[-1]
        out.append(root)
    return out


def test_figures_are_inline_vector_with_a_hover_title_per_model(rendered):
    figs = svgs(rendered["html"])
    assert len(figs) == len(FIGURES), len(figs)
    assert "<img src=\"data:image/png" not in rendered["html"]
    assert "No description has been provided" not in rendered["html"]
    n = len(rendered["tables"].models)
    trend = figs[0]
    assert trend.get("role") == "img" and trend.get("aria-label").startswith(f"Scatter plot of {n} models")
    assert "width:100%" in trend.get("style") and {"viewbox"} & {k.lower() for k in trend.attrib}
    titles = [g.find("title").text for g in trend.iter("g") if g.get("class") == "rs-point"]
    assert len(titles) == n
    for t in titles:
        name, *rest = t.splitlines()
        assert re.fullmatch(r"(Logistic regression|mlp<img.*), 1 epoch, (50|100)% data, ERM, seed [01]", name), name
        assert rest[0].startswith("family: ")
        assert re.fullmatch(r"ID accuracy: \d{1,3}\.\d% \(95% CI \d+\.\d to \d+\.\d\)", rest[1]), rest[1]
        assert re.fullmatch(r"effective robustness: [+-]\d+\.\d points \(95% CI [+-]\d+\.\d to [+-]\d+\.\d\)", rest[3]), rest[3]
    assert sum(1 for f in figs[1:2] for g in f.iter("g") if g.get("class") == "rs-point") == 2 * n   # a panel per shift
    assert "robstudyUI" in rendered["html"] and not re.search(r"""<script[^>]+src=""", rendered["html"])


def test_every_figure_is_saved_as_svg_and_pdf_beside_the_page(rendered):
    html = rendered["html"]
    for what in FIGURES:
        svg, pdf = rendered["out"] / f"effective_robustness-{what}.svg", rendered["out"] / f"effective_robustness-{what}.pdf"
        assert pdf.read_bytes().startswith(b"%PDF"), pdf
        assert ElementTree.parse(svg).getroot().tag.endswith("svg")
        assert f'href="effective_robustness-{what}.svg"' in html and f'href="effective_robustness-{what}.pdf"' in html
    assert set(rendered["figures"]["files"]) >= {f"effective_robustness-{w}.{x}" for w in FIGURES for x in ("svg", "pdf")}


def test_tables_are_for_people_and_exported(rendered):
    html, out, tables = rendered["html"], rendered["out"], rendered["tables"]
    for mid in tables.models.model_id:
        assert mid not in html, f"hash id {mid} shown on the page"
    cells = re.findall(r'<td class="num" data-v="([^"]+)">([^<]*)</td>', html)
    assert cells and all(not re.fullmatch(r"-?\d+\.\d{3,}", shown) for _, shown in cells), "a number with 3+ decimals"
    assert not re.search(r">\s*(nan|NaN|32\.00|1\.000)\s*<", html)
    pct = [(float(v), s) for v, s in cells if re.fullmatch(r"\d{1,3}\.\d", s) and 0 < float(v) < 1]
    assert pct and all(abs(100 * v - float(s)) <= 0.05 + 1e-9 for v, s in pct)   # fractions shown as percent, one decimal
    assert html.count('class="rs-table rs-sortable"') == len(TABLES) and html.count('<button type="button">') > 10
    models = pd.read_csv(out / "effective_robustness-models.csv")
    assert len(models) == len(tables.models) and set(models.model_id) == set(tables.models.model_id)
    assert models["ER (points)"].abs().max() > 0.05                  # points, not fractions
    for name in TABLES:
        tex = (out / f"effective_robustness-{name}.tex").read_text()
        assert "\\begin{tabular}" in tex and "\\toprule" in tex
        assert len(pd.read_csv(out / f"effective_robustness-{name}.csv")) >= 2


def test_the_ranking_aggregates_seeds(rendered):
    from robstudy.fits import fit_tables
    from robstudy.summary import setting_ids
    t = rendered["tables"]
    ranking = rendered["figures"]["ranking"]
    assert len(ranking) == 4 and all(r["n_seeds"] == 2 and r["seeds"] == "0, 1" for r in ranking)
    fit = fit_tables(t, setting_ids(t, role="id")[0], setting_ids(t, role="ood"))
    er = fit.per_model.set_index("model_id").er
    means = [float(np.mean([er[m] for m in r["model_ids"]])) for r in ranking]
    np.testing.assert_allclose([r["er"] for r in ranking], means, atol=1e-9)
    assert means == sorted(means, reverse=True)                        # ranked by the mean over seeds
    assert all(r["er_lo"] < r["er"] < r["er_hi"] for r in ranking)    # an interval across the seeds
    html = rendered["html"]
    assert "Two seeds of one config differ by" in html and "Figure 4. All 4 configs, none omitted." in html
    assert rendered["figures"]["seed_spread"]["pairs"] == 4


def test_no_absolute_path_or_dump_in_the_page(rendered):
    html = rendered["html"]
    for p in (rendered["dir"], rendered["dir"].parent, rendered["out"]):
        assert str(p) not in html
    assert "PosixPath" not in html and "key figures ->" not in html and "Study parameters" not in html


def test_hostile_names_are_escaped_everywhere(rendered):
    html, out = rendered["html"], rendered["out"]
    assert "<img src=x" not in html and "<script>alert(2)" not in html
    titles = [g.find("title").text for f in svgs(html) for g in f.iter("g") if g.get("class") == "rs-point"]
    assert any(f"family: {HOSTILE_FAMILY}" in t for t in titles)      # parsed back from the SVG: it was text there
    assert "family: mlp&lt;img src=x onerror=alert(1)&gt;\\input{x}$a$" in html
    assert "<td>rot&lt;script&gt;alert(2)&lt;/script&gt;\\input{y}&amp;</td>" in html         # the per-shift table
    assert re.search(r"<td>mlp&lt;img src=x onerror=alert\(1\)&gt;\\input\{x\}\$a\$ w16, 1 epoch", html)   # the ranking
    assert "rot&lt;script&gt;alert(2)&lt;/script&gt;\\input{y}&amp;</text>" in html          # a panel's title in an SVG
    for name in TABLES:
        tex = (out / f"effective_robustness-{name}.tex").read_text()
        assert "\\input{" not in tex, name
    assert "\\textbackslash input\\{y\\}" in (out / "effective_robustness-shifts.tex").read_text()
    assert "\\textbackslash input\\{x\\}" in (out / "effective_robustness-ranking.tex").read_text()
    shifts = pd.read_csv(out / "effective_robustness-shifts.csv")
    assert HOSTILE_SHIFT in set(shifts["shift"])                      # data stays data in the CSV
