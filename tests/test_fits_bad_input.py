"Bad input to the fits over tables read back from files: clear errors, never a NaN slope."
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from robstudy.tables import Tables
from robstudy.fits import bootstrap_trend, fit_tables, fit_tables_multi_id, linear_trend


def study(tmp_path, k=8, constant_id=False, drop=None):
    mids = [f"m{i}" for i in range(k)]
    x = np.full(k, 0.7) if constant_id else np.linspace(0.55, 0.9, k)
    y = x - 0.1
    models = pd.DataFrame({"model_id": mids, "recipe": ["std"] * (k - 2) + ["aug"] * 2})
    settings = pd.DataFrame({"setting_id": ["val", "v2"], "dataset": ["a", "b"], "shift": ["clean", "natural"],
                             "severity": [0.0, np.nan], "role": ["id", "ood"]})
    n = 1000
    ev = pd.concat([pd.DataFrame({"model_id": mids, "setting_id": s, "n": n, "correct": np.round(a * n).astype(int)}) for s, a in (("val", x), ("v2", y))])
    ev["accuracy"] = ev.correct / ev.n
    if drop is not None: ev = ev[~((ev.model_id == drop[0]) & (ev.setting_id == drop[1]))]
    Tables(models, settings, ev.astype({"n": "Int64", "correct": "Int64"})).validate().save(tmp_path)
    return Tables.load(tmp_path)


def test_round_trip_fit_is_json(tmp_path):
    f = fit_tables(study(tmp_path), "val", "v2", baseline="recipe == 'std'")
    d = json.loads(json.dumps(f.to_dict()))
    assert d["trend"]["n"] == 6 and np.isfinite(d["trend"]["slope"]) and d["baseline"] == "recipe == 'std'"


def test_fewer_than_three_baseline_models(tmp_path):
    with pytest.raises(ValueError, match=r"baseline \"recipe == 'aug'\" selects 2 models; a line needs at least 3"):
        fit_tables(study(tmp_path), "val", "v2", baseline="recipe == 'aug'")


def test_constant_id_accuracy(tmp_path):
    with pytest.raises(ValueError, match="slope is undefined"):
        fit_tables(study(tmp_path, constant_id=True), "val", "v2")
    with pytest.raises(ValueError, match="slope is undefined"):
        bootstrap_trend([0.7] * 5, [0.5, 0.6, 0.55, 0.52, 0.58], n_boot=10)


def test_settings_missing_for_some_models(tmp_path):
    t = study(tmp_path, drop=("m3", "v2"))
    with pytest.raises(ValueError, match=r"1 of 8 models have no evaluation .*'m3'"):
        fit_tables(t, "val", "v2")
    with pytest.warns(UserWarning, match="dropped 1 of 8"):
        f = fit_tables(t, "val", "v2", missing="drop")
    assert "m3" not in set(f.per_model.model_id)


def test_unknown_setting_and_column(tmp_path):
    t = study(tmp_path)
    with pytest.raises(ValueError, match=r"\['imagenet-a'\] not in the settings table"):
        fit_tables(t, "val", "imagenet-a")
    with pytest.raises(ValueError, match="names no column"):
        fit_tables(t, "val", "v2", baseline="family == 'resnet'")
    with pytest.raises(ValueError, match="could not be evaluated"):
        fit_tables(t, "val", "v2", baseline="recipe ==")
    with pytest.raises(ValueError, match="two or more ID settings"):
        fit_tables_multi_id(t, ["val"], "v2")


def test_no_nan_slope_ever():
    for bad in ([0.5, np.nan, 0.7], [0.5, 0.6], [0.6, 0.6, 0.6], [55.0, 60.0, 70.0]):
        with pytest.raises(ValueError):
            linear_trend(bad, [0.4] * len(bad))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = linear_trend([0.0, 0.5, 1.0], [0.0, 0.4, 1.0])
    assert np.isfinite(t.slope) and np.isfinite(t.intercept)
