"""The course: every lesson in nbs/course/ runs end to end through `run_report` in quick mode, with its worked
solutions hidden and shown, renders to HTML, and writes sane key figures."""
import json
import math
import os
from pathlib import Path

import pytest

from robstudy.reports import run_report

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "nbs" / "course"
LESSONS = sorted(p.stem for p in COURSE.glob("[0-9]*.ipynb"))
SHOWN, HIDDEN = "Solution to exercise", "Worked solutions are hidden"


def _finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _accuracies(figs, key):
    "Every number under `key` (a number or a dict of numbers)."
    v = figs[key]
    return list(v.values()) if isinstance(v, dict) else [v]


# what each lesson's figures must hold: keys whose numbers are accuracies (fractions in [0, 1])
ACCURACY_KEYS = {
    "01_what_is_a_distribution_shift": ["clean_accuracy", "shift_accuracy"],
    "02_corruptions_and_severity": ["clean_accuracy"],
    "03_accuracy_on_the_line": ["mean_id_accuracy", "mean_ood_accuracy"],
    "04_reanalysing_a_published_study": [],
    "05_subpopulation_shift": ["erm_average_accuracy", "erm_worst_group_accuracy", "dro_average_accuracy", "dro_worst_group_accuracy"],
    "06_adversarial_robustness": ["standard_clean_accuracy", "standard_pgd_accuracy", "adversarial_clean_accuracy", "adversarial_pgd_accuracy"],
    "07_estimating_ood_accuracy_without_labels": ["mean_ood_accuracy"],
    "08_designing_your_own_study": ["mean_id_accuracy"],
}


def _in_unit(*vs):
    return all(_finite(v) and 0 <= v <= 1 for v in vs)


# what each lesson's figures must say besides (the lesson's point, made with its quick-mode numbers)
CHECKS = {
    "01_what_is_a_distribution_shift": lambda f: f["shift_accuracy"][f["worst_shift"]] < f["clean_accuracy"],
    "02_corruptions_and_severity": lambda f: all(v is None or 0 <= v <= 5 for m in f["failure_severity"].values() for v in m.values()),
    "03_accuracy_on_the_line": lambda f: f["n_models"] >= 3 and _in_unit(f["pooled_r2"], *f["r2_by_shift"].values())
                                         and f["augmented_rotation_er_mean"] > 0,
    # by default the lesson reanalyses the ImageNet testbed shipped with robstudy: CLIP's zero-shot models stand out
    "04_reanalysing_a_published_study": lambda f: f["n_lines"] >= 1 and f["bootstrap_slope_ci"][0] < f["slope"] < f["bootstrap_slope_ci"][1]
                                                  and f["n_models"] == 338 and f["alternative_baseline"] == "model_type == 'STANDARD'"
                                                  and "clip" in f["top_model"].lower() and f["top_model_er"] > 0.05,
    "05_subpopulation_shift": lambda f: f["dro_worst_group_accuracy"] > f["erm_worst_group_accuracy"],
    "06_adversarial_robustness": lambda f: f["pgd_below_fgsm"] and f["standard_pgd_accuracy"] < f["standard_clean_accuracy"]
                                           and f["adversarial_pgd_accuracy"] > f["standard_pgd_accuracy"],
    "07_estimating_ood_accuracy_without_labels": lambda f: _in_unit(*f["mae"].values()) and f["mae"]["aline_s"] < f["mae"]["id_accuracy"],
    "08_designing_your_own_study": lambda f: f["final_run_reused_everything"] and f["report_status"] == "ok" and f["report_cached_on_rerun"],
}


def test_course_has_every_lesson():
    assert len(LESSONS) == 8 and set(LESSONS) == set(ACCURACY_KEYS), sorted(set(LESSONS) ^ set(ACCURACY_KEYS))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    "Every lesson rendered in quick mode with its solutions hidden and shown, two at a time (the lessons' models use one thread)."
    from concurrent.futures import ThreadPoolExecutor
    jobs = [(lesson, show) for lesson in LESSONS for show in (False, True)]
    # the output folders are made here, before the threads: pytest's temporary-folder factory is not thread-safe
    outs = {job: tmp_path_factory.mktemp(f"{job[0]}-{'shown' if job[1] else 'hidden'}") for job in jobs}
    def render(job):
        lesson, show = job
        out = outs[job]
        return job, (out, run_report(lesson, {"quick": True, "show_solutions": show}, out, nb_folder=COURSE, study="course"))
    with ThreadPoolExecutor(max_workers=int(os.environ.get("ROBSTUDY_COURSE_WORKERS", "2"))) as pool:
        return dict(pool.map(render, jobs))


@pytest.mark.parametrize("show", [False, True], ids=["hidden", "shown"])
@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_renders(lesson, show, rendered):
    out, rec = rendered[lesson, show]
    assert rec["status"] == "ok", rec.get("error")
    page = (out / f"{lesson}.html").read_text()
    assert "Learning goals" in page and "Exercises" in page
    assert (SHOWN in page) == show and (HIDDEN in page) != show, f"solutions {'not shown' if show else 'leaked'} in {lesson}"
    figs = json.loads((out / f"{lesson}.json").read_text())
    assert figs == rec["figures"] and figs
    for key in ACCURACY_KEYS[lesson]:
        for v in _accuracies(figs, key):
            assert _finite(v) and 0 <= v <= 1, (key, v)
    assert CHECKS[lesson](figs), figs

def _testbed_table(folder: Path) -> tuple:
    "A small ImageNet-testbed-style wide CSV (percent) and its model-types file, with a probit-linear trend plus noise."
    import numpy as np
    from scipy import stats
    rng = np.random.default_rng(0)
    n = 14
    val = np.sort(rng.uniform(0.55, 0.85, n))
    cols = {"imagenetv2-matched-frequency": (0.9, -0.45), "imagenet-sketch": (0.8, -1.1), "imagenet-c.gaussian_noise.3_in-memory": (0.7, -0.6)}
    lines = ["model,val," + ",".join(cols)]
    types = ["model,model_type,nat_model_type"]
    for i, v in enumerate(val):
        z = stats.norm.ppf(v)
        ood = [100 * stats.norm.cdf(b * z + a + rng.normal(0, 0.04) + (0.25 if i % 5 == 4 else 0)) for b, a in cols.values()]
        lines.append(f"net{i},{100 * v:.2f}," + ",".join(f"{o:.2f}" for o in ood))
        kind = "ROBUST_INTV" if i % 5 == 4 else "STANDARD"
        types.append(f"net{i},{kind},{kind}")
    (folder / "robustness_top1s.csv").write_text("\n".join(lines) + "\n")
    (folder / "model_types.csv").write_text("\n".join(types) + "\n")
    return folder / "robustness_top1s.csv", folder / "model_types.csv"


def test_reanalysis_of_a_published_table(tmp_path):
    "Lesson 4 on a table in the ImageNet testbed's published format: it refits its lines and questions its baseline."
    table, types = _testbed_table(tmp_path)
    params = {"quick": True, "show_solutions": True, "table_path": str(table), "table_format": "testbed",
              "ingest_options": {"scale": "percent", "model_types": str(types)}}
    rec = run_report("04_reanalysing_a_published_study", params, tmp_path / "out", nb_folder=COURSE, study="course")
    assert rec["status"] == "ok", rec.get("error")
    figs = rec["figures"]
    assert figs["n_models"] == 14 and figs["n_lines"] == 3
    assert figs["alternative_baseline"] == "model_type == 'STANDARD'"
    assert 0.6 < figs["slopes"]["imagenetv2:natural"] < 1.2, figs["slopes"]   # generated with slope 0.9
    lo, hi = figs["bootstrap_slope_ci"]
    assert lo < figs["slope"] < hi
    assert figs["top_model"] in {"net4", "net9"}                                 # the two robust interventions (net14 absent)

