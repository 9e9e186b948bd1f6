"""Fits that say what they leave out (issue 16, items 10 and 12): intervals computed without test-set sizes are
announced, and (model, setting) pairs whose shift the model saw in training stay out of the baseline by default."""
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from robstudy.fits import effective_robustness, fit_tables, fit_tables_multi_id, linear_trend
from robstudy.tables import Tables


def _tables(k=12, n=2000, seen=(), no_n=(), seed=0):
    "k models on a probit line; `seen` models lifted 8 points on 'rot' and flagged; `no_n` settings without sizes."
    r = np.random.default_rng(seed)
    mids = [f"m{i}" for i in range(k)]
    x = np.linspace(0.55, 0.92, k)
    y = stats.norm.cdf(0.9 * stats.norm.ppf(x) - 0.4)
    lift = np.isin(np.arange(k), seen)
    acc = {"val": x, "rot": np.where(lift, y + 0.08, y), "rot2": y - 0.02, "val2": np.clip(x + r.normal(0, 0.02, k), 0, 1)}
    models = pd.DataFrame({"model_id": mids, "recipe": np.where(lift, "augmix", "erm")})
    settings = pd.DataFrame({"setting_id": list(acc), "dataset": "d", "shift": ["clean", "rotation", "rotation", "clean"],
                             "severity": [0.0, 2.0, 3.0, 0.0], "role": ["id", "ood", "ood", "id"]})
    rows = []
    for s, a in acc.items():
        c = r.binomial(n, a)
        rows.append(pd.DataFrame({"model_id": mids, "setting_id": s, "n": n, "correct": c, "accuracy": c / n,
                                  "seen_in_training": lift & (s in ("rot", "rot2"))}))
    ev = pd.concat(rows, ignore_index=True).astype({"n": "Int64", "correct": "Int64"})
    for s in no_n: ev.loc[ev.setting_id == s, ["n", "correct"]] = pd.NA
    return Tables(models, settings, ev).validate()


def _messages(fn):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(m.message) for m in w]


# item 12: intervals without n

def test_intervals_without_test_set_sizes_are_announced():
    t = _tables(no_n=("rot",))
    with pytest.warns(UserWarning, match=r"without a test-set size n.*'rot'"):
        f = fit_tables(t, "val", "rot")
    assert f.settings_without_n == ["rot"]
    _, msgs = _messages(lambda: fit_tables(_tables(), "val", "rot"))
    assert not any("test-set size" in m for m in msgs), msgs                # tables with n: no such warning
    with pytest.warns(UserWarning, match=r"without a test-set size n.*'rot'"):
        fit_tables_multi_id(t, ["val", "val2"], "rot")


def test_a_model_with_n_keeps_its_binomial_term_beside_models_without():
    tr = linear_trend(np.linspace(0.5, 0.9, 10), np.linspace(0.4, 0.8, 10) + 0.01 * np.sin(np.arange(10)))
    x, y = [0.6, 0.7, 0.8], [0.5, 0.6, 0.7]
    line_only = effective_robustness(tr, x, y)
    mixed = effective_robustness(tr, x, y, n_x=[1000, np.nan, 1000], n_y=[500, np.nan, 500])
    assert np.isfinite(mixed.er_se).all()
    np.testing.assert_allclose(mixed.er_se[1], line_only.er_se[1])          # no size: the line's uncertainty only
    assert (mixed.er_se[[0, 2]] > line_only.er_se[[0, 2]] * 1.5).all()      # with sizes: binomial noise added


def test_plot_error_bars_without_n_are_announced():
    pytest.importorskip("matplotlib")
    from robstudy.plots import trend_intervals
    t = _tables(no_n=("rot",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit_tables(t, "val", "rot")
    with pytest.warns(UserWarning, match=r"no binomial interval for 12 of 12 models.*'rot'"):
        ci = trend_intervals(f, t)
    assert ci.y_lo.isna().all() and ci.x_lo.notna().all()


# item 10: seen in training

def test_pairs_seen_in_training_stay_out_of_the_baseline():
    t = _tables(seen=(2, 5, 9))
    clean = fit_tables(_tables(), "val", "rot")
    with pytest.warns(UserWarning, match=r"3 models .*seen_in_training.*exclude_seen=False"):
        f = fit_tables(t, "val", "rot")
    per = f.per_model.set_index("model_id")
    assert f.excluded_seen == 3 and f.trend.n == 9 and f.to_dict()["excluded_seen"] == 3
    assert not per.in_baseline[["m2", "m5", "m9"]].any() and per.seen_in_training[["m2", "m5", "m9"]].all()
    assert (per.er[["m2", "m5", "m9"]] > 0.06).all()                      # they still get effective robustness
    assert abs(f.trend.slope - clean.trend.slope) < 0.05                   # and the line is the clean models' line
    g, msgs = _messages(lambda: fit_tables(t, "val", "rot", exclude_seen=False))
    assert g.excluded_seen == 0 and g.trend.n == 12 and g.per_model.in_baseline.all()
    assert not any("seen_in_training" in m for m in msgs)


def test_seen_flags_count_for_pooled_settings_and_the_multi_id_plane():
    t = _tables(seen=(1, 4))
    with pytest.warns(UserWarning, match="seen_in_training"):
        f = fit_tables(t, "val", ["rot", "rot2"])
    assert f.excluded_seen == 2 and f.trend.n == 10
    with pytest.warns(UserWarning, match="seen_in_training"):
        m = fit_tables_multi_id(t, ["val", "val2"], "rot")
    assert m.excluded_seen == 2 and m.trend.n == 10


def test_a_baseline_emptied_by_the_flags_says_why():
    t = _tables(k=6, seen=(0, 1, 2, 3))
    with pytest.raises(ValueError, match=r"4 of them .*seen_in_training.*exclude_seen=False"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_tables(t, "val", "rot")


def test_tables_without_the_column_fit_as_before():
    t = _tables()
    t = Tables(t.models, t.settings, t.evals.drop(columns="seen_in_training"))
    f = fit_tables(t, "val", "rot")
    assert f.excluded_seen == 0 and f.trend.n == 12 and not f.per_model.seen_in_training.any()
