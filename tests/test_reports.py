"""`robstudy report` end to end on the shared tiny study: every default report, code shown on request, the cache,
parameters checked before anything runs, the device passed through, and the reanalysis of a published table."""
import json
import re

import pytest

from conftest import SHARED as TINY, copy_study, run_robstudy

DEFAULT = ["effective_robustness", "correlation", "shift_gallery", "adversarial"]
REANALYSIS = ["+report.parameters.reanalysis.ingest_options={scale: percent, id_settings: [val], model_columns: [arch],"
              " columns: {model_id: model, setting_id: setting, accuracy: top1}}", "+report.parameters.reanalysis.hue=arch"]


@pytest.fixture
def reported(shared_study):
    "The shared study, reported with the default reports (read only)."
    return dict(dir=shared_study["dir"], report=shared_study["report"], out=shared_study["dir"] / "reports/digits")


@pytest.fixture
def own(shared_study, tmp_path):
    "A private copy of the shared study, for tests that run reports into it."
    d = copy_study(shared_study, tmp_path / "study")
    return dict(dir=d, out=d / "reports/digits")


def test_default_reports_render(reported):
    r = reported["report"]
    assert r["returncode"] == 0, r["stdout"] + r["stderr"]
    for name in DEFAULT:
        html = (reported["out"] / f"{name}.html").read_text()
        assert html.count("data:image/png;base64") >= 1, name
        assert not re.findall(r"""<(?:script|link|img|iframe)[^>]+(?:src|href)=["'](?:https?:)?//""", html), name
        assert "import matplotlib" not in html, f"{name}: code is hidden by default"
        assert (reported["out"] / f"{name}.ipynb").exists()
        figs = json.loads((reported["out"] / f"{name}.json").read_text())
        assert figs["provenance"]["device"] == "cpu"
        rec = json.loads((reported["out"] / f"{name}.record.json").read_text())
        assert rec["status"] == "ok" and rec["parameters"]["config"]["device"] == "cpu" and rec["cache_key"]
    adv = json.loads((reported["out"] / "adversarial.json").read_text())
    assert adv["n_models"] == 8 and all(0 <= v <= 1 for v in adv["mean_accuracy"].values())
    cor = json.loads((reported["out"] / "correlation.json").read_text())
    assert {r["shift"] for r in cor["by_severity"]} == {"gaussian_noise", "rotation"}
    figs = json.loads((reported["out"] / "effective_robustness.json").read_text())
    assert figs["n_models"] == 8 and len(figs["per_shift"]) == 2 and -1 <= figs["per_shift"][0]["pearson"] <= 1
    assert figs["provenance"]["versions"]["torch"]
    html = (reported["out"] / "effective_robustness.html").read_text()
    assert "Effective robustness: study" in html and "Per-shift table" in html and html.count("data:image/png;base64") >= 2
    index = (reported["dir"] / "reports/index.html").read_text()
    for name in DEFAULT:
        assert f"digits/{name}.html" in index and f"digits/{name}.json" in index
    assert index.count("class='ok'") == len(DEFAULT)


def test_unchanged_reports_are_not_rerun_and_code_shows_on_request(own):
    rec = own["out"] / "correlation.record.json"
    before = rec.stat().st_mtime_ns
    again = run_robstudy("report", *TINY, cwd=own["dir"])
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("unchanged, not re-run") == len(DEFAULT), again.stdout
    assert rec.stat().st_mtime_ns == before
    shown = run_robstudy("report", *TINY, "report.notebooks=[shift_gallery]", "report.show_code=true", cwd=own["dir"])
    assert shown.returncode == 0 and "unchanged" not in shown.stdout, shown.stdout + shown.stderr   # show_code is an input
    assert "plot_shift_gallery" in (own["out"] / "shift_gallery.html").read_text()


def test_force_reruns(own):
    rec = own["out"] / "correlation.record.json"
    before = rec.stat().st_mtime_ns
    forced = run_robstudy("report", *TINY, "report.notebooks=[correlation]", "report.force=true", cwd=own["dir"])
    assert forced.returncode == 0 and "unchanged" not in forced.stdout, forced.stdout + forced.stderr
    assert rec.stat().st_mtime_ns != before


@pytest.mark.parametrize("override,expect", [
    ("+report.parameters.shift_gallery.n_images=three", "parameter 'n_images' of report 'shift_gallery' must be int"),
    ("+report.parameters.shift_gallery.bogus=1", "unknown parameter(s) ['bogus'] for report 'shift_gallery'"),
    ("+report.parameters.nope.x=1", "names report(s) ['nope']"),
    ("report.notebooks=[nope]", "unknown report 'nope'; expected one of"),
])
def test_bad_parameters_fail_before_running(reported, override, expect):
    recs = {p: p.stat().st_mtime_ns for p in reported["out"].glob("*.record.json")}
    r = run_robstudy("report", *TINY, "report.force=true", override, cwd=reported["dir"])
    assert r.returncode != 0 and expect in r.stdout + r.stderr, r.stdout + r.stderr
    assert {p: p.stat().st_mtime_ns for p in reported["out"].glob("*.record.json")} == recs, "no report may run"


def test_device_without_gpu_fails_before_running(reported):
    import torch
    if torch.cuda.is_available(): pytest.skip("a GPU is present")
    r = run_robstudy("report", "zoo=tiny", "device=cuda", cwd=reported["dir"])
    assert r.returncode != 0 and "no CUDA GPU is available" in r.stdout + r.stderr, r.stdout + r.stderr


def test_reanalysis_of_a_published_table(own, tmp_path):
    import numpy as np
    rng = np.random.default_rng(0)
    lines = ["model,setting,top1,n,arch"]
    for i in range(10):
        a = rng.uniform(60, 95)
        for s, drop in (("val", 0), ("v2", 12), ("sketch", 35)):
            lines.append(f"m{i},{s},{max(1.0, a - drop + rng.normal(0, 2)):.2f},1000,{'cnn' if i % 2 else 'vit'}")
    table = tmp_path / "published.csv"; table.write_text("\n".join(lines) + "\n")
    r = run_robstudy("report", *TINY, "report.notebooks=[reanalysis]", f"+report.parameters.reanalysis.table_path={table}",
                     *REANALYSIS, cwd=own["dir"])
    assert r.returncode == 0, r.stdout + r.stderr
    figs = json.loads((own["out"] / "reanalysis.json").read_text())
    assert figs["n_models"] == 10 and figs["id_setting"] == "val"
    assert sorted(f["setting"] for f in figs["fits"]) == ["sketch", "v2"]
    assert all(np.isfinite(f["slope"]) for f in figs["fits"])
    assert "Reanalysis of a published table" in (own["out"] / "reanalysis.html").read_text()
    # the table is an input of the report: change it and its cache key changes, so the report runs again
    from robstudy.reports import report_inputs, report_notebook
    params = {"table_path": str(table)}
    key = report_inputs(report_notebook("reanalysis"), params)
    table.write_text(table.read_text() + "m10,val,80.00,1000,cnn\nm10,v2,70.00,1000,cnn\nm10,sketch,45.00,1000,cnn\n")
    assert report_inputs(report_notebook("reanalysis"), params)["files"] != key["files"]
