"Effective-robustness fits checked against the published ImageNet testbed (Taori et al. 2020); skipped without the reference tables."
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from robstudy.tables import Tables
from robstudy.fits import effective_robustness, fit_tables, linear_trend

REPO = Path(__file__).resolve().parents[1]
X, Y = "val", "imagenetv2-matched-frequency-format-val"


from conftest import reference_dir

REF = reference_dir()
pytestmark = pytest.mark.skipif(REF is None, reason="reference results absent (set ROBSTUDY_REFERENCE)")


@pytest.fixture(scope="module")
def testbed():
    d = pd.read_csv(REF / "imagenet_testbed" / "robustness_top1s.csv")
    t = pd.read_csv(REF / "imagenet_testbed" / "model_types.csv")
    m = d.merge(t, on="model", how="left").dropna(subset=[X, Y]).reset_index(drop=True)
    return m


def paper_baseline(m):
    "The paper's rule (plotting/paper_imagenetv2_bare.py): STANDARD, val >= 55, no subsample/aws/batch64."
    name = m.model.str
    return (m.nat_model_type == "STANDARD") & ~name.contains("subsample") & (m[X] >= 55) & ~name.contains("aws") & ~name.contains("batch64")


def test_linear_trend_matches_linregress(testbed):
    b = testbed[paper_baseline(testbed)]
    assert len(b) > 50
    logit = lambda p: np.log(p / (1 - p))
    lr = stats.linregress(logit(b[X] / 100), logit(b[Y] / 100))
    tr = linear_trend(b[X] / 100, b[Y] / 100, transform="logit")
    print(f"\ntestbed v2 (logit, n={tr.n}): slope {tr.slope:.4f} intercept {tr.intercept:.4f} r2 {tr.r2:.4f}; "
          f"linregress {lr.slope:.4f} {lr.intercept:.4f}")
    assert tr.slope == pytest.approx(lr.slope, abs=1e-10)
    assert tr.intercept == pytest.approx(lr.intercept, abs=1e-10)
    assert tr.slope_se == pytest.approx(lr.stderr, rel=1e-8)
    assert tr.r2 == pytest.approx(lr.rvalue**2, abs=1e-10)
    # the paper's effective robustness formula, in percentage points
    er = effective_robustness(tr, testbed[X] / 100, testbed[Y] / 100)
    paper = testbed[Y] - 100 / (1 + np.exp(-(lr.slope * logit(testbed[X] / 100) + lr.intercept)))
    np.testing.assert_allclose(er.er * 100, paper, atol=1e-8)


def _as_tables(m):
    "The testbed as tidy Tables (plain pandas; the official ingest lives elsewhere)."
    models = m[["model", "model_type", "nat_model_type"]].rename(columns={"model": "model_id"})
    settings = pd.DataFrame({"setting_id": [X, Y], "dataset": ["imagenet", "imagenetv2"], "shift": ["clean", "natural"],
                             "severity": [0.0, np.nan], "role": ["id", "ood"]})
    ev = m.melt(id_vars="model", value_vars=[X, Y], var_name="setting_id", value_name="accuracy").rename(columns={"model": "model_id"})
    ev["n"] = ev.setting_id.map({X: 50_000, Y: 10_000})
    ev["correct"] = (ev.accuracy / 100 * ev.n).round()
    ev["accuracy"] = ev.correct / ev.n
    ev = ev.astype({"n": "Int64", "correct": "Int64"})
    return Tables(models, settings, ev).validate()


def test_fit_tables_paper_rule_and_robust_interventions(testbed):
    tb = _as_tables(testbed)
    q = ("nat_model_type == 'STANDARD' and not model_id.str.contains('subsample') and val >= 0.55 "
         "and not model_id.str.contains('aws') and not model_id.str.contains('batch64')")
    f = fit_tables(tb, X, Y, transform="logit", baseline=q)
    assert f.trend.n == int(paper_baseline(testbed).sum())
    assert f.baseline == q and f.to_dict()["baseline"] == q
    per = f.per_model.set_index("model_id")
    er_pp = per.er * 100
    by_type = er_pp.groupby(per.model_type).agg(["count", "mean", "min", "max"]).round(2)
    print("\neffective robustness on ImageNetV2 (pp) by model type:\n", by_type)
    clip = er_pp[er_pp.index.str.contains("clip_zeroshot")]
    print("CLIP zero-shot:", clip.round(2).to_dict())
    # the paper: robustness interventions give little to no effective robustness on ImageNetV2
    ri = er_pp[per.nat_model_type == "ROBUST_INTV"]
    assert abs(ri.mean()) < 0.5 and ri.abs().max() < 2.5
    # the baseline's residuals centre on zero
    assert abs(er_pp[per.in_baseline].mean()) < 0.3
    # models trained on much more data sit above the line; zero-shot CLIP the most (several points)
    assert er_pp[per.model_type == "MORE_DATA"].mean() > ri.mean()
    assert len(clip) >= 1 and (clip > 3).all() and (per.loc[clip.index, "er_lo"] > 0).all()


def test_fit_tables_bad_input(testbed):
    tb = _as_tables(testbed)
    with pytest.raises(ValueError, match="names no column"):
        fit_tables(tb, X, Y, baseline="architecture == 'resnet'")
    with pytest.raises(ValueError, match="selects 0 models"):
        fit_tables(tb, X, Y, baseline="val > 0.99")
    tb.evals = tb.evals.iloc[1:]
    with pytest.raises(ValueError, match="have no evaluation"):
        fit_tables(tb, X, Y)
