"""`robstudy fit` on the ImageNet testbed: the paper's baseline rule, checked against scipy's linregress."""
import json
import subprocess

import numpy as np
import pandas as pd
from scipy import stats

RULE = "nat_model_type == 'STANDARD' and val >= 0.55 and not model_id.str.contains('subsample|aws|batch64')"


def test_fit_testbed_matches_linregress(robstudy_cmd, reference):
    tb = reference / "imagenet_testbed"
    r = subprocess.run([*robstudy_cmd, "fit", str(tb / "robustness_top1s.csv"), "--format", "testbed",
                        "--opt", f"model_types={tb / 'model_types.csv'}", "--opt", f"metadata={tb / 'website_results_metadata.csv'}",
                        "--x", "val", "--y", "imagenetv2-matched-frequency-format-val", "--transform", "logit",
                        "--missing", "drop", "--baseline", RULE, "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # the same rule with plain pandas and scipy
    acc = pd.read_csv(tb / "robustness_top1s.csv")
    types = pd.read_csv(tb / "model_types.csv")
    df = acc.merge(types, on="model")
    df = df[(df.nat_model_type == "STANDARD") & (df.val >= 55) & ~df.model.str.contains("subsample|aws|batch64")]
    df = df.dropna(subset=["val", "imagenetv2-matched-frequency-format-val"])
    logit = lambda p: np.log(p / (1 - p))
    ref = stats.linregress(logit(df.val / 100), logit(df["imagenetv2-matched-frequency-format-val"] / 100))
    assert out["n"] == len(df)
    assert abs(out["slope"] - ref.slope) < 1e-6 and abs(out["intercept"] - ref.intercept) < 1e-6
    er = {m["model_id"]: m["er"] for m in out["per_model"]}
    # the paper's finding: zero-shot CLIP sits far above the line, standard models on it
    assert er["vit_b_32_clip_zeroshot"] > 0.03
    assert abs(np.median([er[m] for m in df.model])) < 0.01


def test_fit_bad_setting_is_a_clear_error(robstudy_cmd, tmp_path):
    r = subprocess.run([*robstudy_cmd, "fit", str(tmp_path), "--x", "a", "--y", "b"], capture_output=True, text=True)
    assert r.returncode == 2 and "no results tables here" in r.stderr
