"Ingest every published reference table (skipped when ../shared/reference-results is absent) and check real facts."
import csv, json, warnings

import numpy as np
import pandas as pd
import pytest

from robstudy.ingest import merge_tables, prefix_settings, read_linefit_json, read_qa, read_robustbench, read_robustbench_corruptions, read_testbed, read_timm

from conftest import reference_dir

REF = reference_dir()
pytestmark = pytest.mark.skipif(REF is None, reason="no reference-results folder (set ROBSTUDY_REFERENCE)")


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f: return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def testbed():
    d = REF/"imagenet_testbed"
    return read_testbed(d/"robustness_top1s.csv", d/"website_results_metadata.csv", d/"model_types.csv")


def test_testbed_shape_and_sizes(testbed):
    assert (len(testbed.models), len(testbed.settings)) == (338, 213)
    rows = _rows(REF/"imagenet_testbed/robustness_top1s.csv")
    assert len(testbed.evals) == sum(v != "" for r in rows for k, v in r.items() if k != "model")
    e = testbed.evals.set_index(["model_id", "setting_id"])
    assert e.loc[("resnet50", "val"), "n"] == 50000
    assert e.loc[("resnet50", "imagenetv2-matched-frequency-format-val"), "n"] == 10000
    assert e.loc[("resnet50", "objectnet-1.0-beta"), "n"] == 18514
    assert (testbed.evals.n.notna()).all() and (testbed.evals.correct <= testbed.evals.n).all()
    r50 = next(r for r in rows if r["model"] == "resnet50")
    assert e.loc[("resnet50", "val"), "accuracy"] == pytest.approx(float(r50["val"]) / 100, abs=1e-12)
    assert e.loc[("resnet50", "val"), "correct"] == round(float(r50["val"]) / 100 * 50000)


def test_testbed_roles_and_types(testbed):
    s = testbed.settings.set_index("setting_id")
    assert sorted(s.index[s.role == "id"]) == sorted(["val", "val-on-imagenet-a-classes", "val-on-imagenet-r-classes", "val-on-objectnet-classes",
                                                    "val-on-vid-robust-classes", "val-on-ytbb-robust-classes", "val_subsampled_class_1_8"])
    assert s.loc["objectnet-1.0-beta", "id_setting"] == "val-on-objectnet-classes"
    assert (s.loc[s.dataset == "imagenet-c", "severity"].isin([1, 2, 3, 4, 5])).all()
    m = testbed.models.set_index("model_id")
    assert m.loc["resnet50", "nat_model_type"] == "STANDARD" and m.loc["resnet50", "architecture"] == "resnet50"
    assert testbed.meta["sources"][0]["sha256"] == "6b32665be2eef1594d6d296fcb07d33fed0dd4ecacacff463841d7cb08e835f7"


def test_website_results_agree(testbed):
    d = REF/"imagenet_testbed"
    web = read_testbed(d/"website_results.csv", d/"website_results_metadata.csv")
    assert len(web.models) == 330 and "avg_corruptions" in web.meta["dropped_columns"]
    both = web.evals.merge(testbed.evals, on=["model_id", "setting_id"])
    assert len(both) > 10000
    np.testing.assert_allclose(both.accuracy_x, both.accuracy_y, atol=1e-9)


def test_timm():
    t = read_timm(REF/"timm", metadata=REF/"timm/model_metadata-in1k.csv", sizes={"imagenet": 50000, "imagenetv2-matched-frequency": 10000})
    # 1,556 (model, img_size) lines per file; resmlp_24_224.fb_dino is only in results-imagenet-a.csv (and one other model is not)
    assert len(t.settings) == 8 and t.models.model.nunique() == 1267 and len(t.models) == 1557
    assert t.evals.groupby("model_id").size().min() == 1
    assert len(t.evals) == 8 * 1556
    row = next(r for r in _rows(REF/"timm/results-imagenet.csv") if r["model"].startswith("resnet50."))
    mid = row["model"] if row["model"] in set(t.models.model_id) else f"{row['model']}@{row['img_size']}"
    e = t.evals.set_index(["model_id", "setting_id"])
    assert e.loc[(mid, "imagenet"), "accuracy"] == pytest.approx(float(row["top1"]) / 100, abs=1e-12)
    assert e.loc[(mid, "imagenet"), "n"] == 50000
    m = t.models.set_index("model_id")
    assert m.loc[mid, "pretrain"] == "in1k" and m.param_count.max() > 1000    # '1,014.45' read with its separator
    roles = t.settings.set_index("setting_id").role
    assert roles["imagenet"] == roles["imagenet-r-clean"] == roles["imagenet-a-clean"] == "id" and roles["sketch"] == "ood"


def test_robustbench_flat_and_unaggregated():
    rb = read_robustbench(REF/"robustbench/model_info_flat.csv")
    assert len(rb.models) == 236
    flat = pd.read_csv(REF/"robustbench/model_info_flat.csv")
    assert (rb.evals.setting_id.isin(["cifar10", "cifar100", "imagenet"])).sum() == len(flat)
    agg = rb.evals[rb.evals.setting_id == "cifar10-c"].set_index("model_id").accuracy
    un = read_robustbench_corruptions(REF/"robustbench/cifar10_corruptions_unaggregated_results.csv")
    assert len(un.settings) == 75
    mean = un.evals.groupby("model_id").accuracy.mean()
    common = agg.index.intersection(mean.index)
    assert len(common) >= 5
    np.testing.assert_allclose(mean[common] * 100, agg[common] * 100, atol=0.006)
    for f in ("cifar100_corruptions_unaggregated_results.csv", "imagenet_corruptions_unaggregated_results.csv",
              "imagenet_corruptions_3d_unaggregated_results.csv"):
        t = read_robustbench_corruptions(REF/"robustbench"/f)
        assert len(t.evals) == len(t.models) * len(t.settings)
    assert t.settings.setting_id.str.startswith("imagenet-3dcc.").all()


def test_robustbench_json_folder_matches_flat(tmp_path):
    "The per-model JSON layout (numbers as strings) gives the same tables as the flattened CSV."
    flat = pd.read_csv(REF/"robustbench/model_info_flat.csv", keep_default_na=False, na_values=[""])
    for r in flat.to_dict("records"):
        d = tmp_path/r.pop("bench_dataset")/r.pop("threat_model"); d.mkdir(parents=True, exist_ok=True)
        name = r.pop("model_id")
        rec = {k: (None if isinstance(v, float) and np.isnan(v) else str(v) if k.endswith(("_acc", "_mce", "_3d")) or k in ("reported", "external") else v)
               for k, v in r.items()}
        (d/f"{name}.json").write_text(json.dumps(rec, default=str))
    a, b = read_robustbench(tmp_path), read_robustbench(REF/"robustbench/model_info_flat.csv")
    ka = a.evals.set_index(["model_id", "setting_id"]).accuracy.sort_index()
    kb = b.evals.set_index(["model_id", "setting_id"]).accuracy.sort_index()
    pd.testing.assert_series_equal(ka, kb)


def test_qa():
    d = REF/"awadalla_qa"
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        t = read_qa(d/"extractive_question_answering_final_avg.csv", annotations=d/"annotated_data.csv")
    assert (len(t.models), len(t.settings)) == (207, 16) and len(t.evals) == 3312
    assert t.settings.set_index("setting_id").role["squad"] == "id" and (t.settings.role == "ood").sum() == 15
    assert {c["model"] for c in t.meta["conflicts"]} == {"distilbert-base-uncased-distilled-squad", "distilbert-base-uncased_houlsby",
                                                         "distilbert-base-uncased_pfeiffer"} and len(w) >= 1
    ev = t.evals
    assert ((ev.acc_lo <= ev.accuracy) & (ev.accuracy <= ev.acc_hi)).all()
    np.testing.assert_allclose(ev.accuracy * 100, ev.f1)
    full = read_qa(d/"extractive_question_answering_final.csv", exclude="wise")
    assert len(full.settings) == 16 and not full.models.model_id.str.contains("wise").any()


def test_linefit():
    for f, k in (("ycb_50ktrain_evals.json", 32), ("ycb_100ktrain_evals.json", 35)):
        t = read_linefit_json(REF/"linearfits_app"/f)
        assert len(t.models) == k and len(t.evals) == 2 * k
        assert ((t.evals.acc_lo <= t.evals.accuracy + 1e-12) & (t.evals.accuracy <= t.evals.acc_hi + 1e-12)).all()


def test_merge_everything(testbed, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = [prefix_settings(read_timm(REF/"timm"), "timm:"), read_robustbench(REF/"robustbench/model_info_flat.csv"),
                 read_qa(REF/"awadalla_qa/extractive_question_answering_final_avg.csv"),
                 read_linefit_json(REF/"linearfits_app/ycb_50ktrain_evals.json", dataset="ycb"),
                 read_linefit_json(REF/"linearfits_app/ycb_100ktrain_evals.json", dataset="ycb")]
    m = merge_tables(testbed, *parts)
    assert len(m.evals) == len(testbed.evals) + sum(len(p.evals) for p in parts)
    back = type(m).load(m.save(tmp_path/"all"))
    assert len(back.evals) == len(m.evals) and back.evals.n.dtype == "Int64"
