"""`robstudy report` end to end on the shared tiny study: every default report, code shown on request, the cache,
parameters checked before anything runs, the device passed through, the reanalysis of a published table, the config
and provenance every page ends with (read from the study folder, with a warning when the composition differs, and no
path of this machine), and a report killed while it renders (never recorded as ok)."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, SHARED as TINY, copy_study, run_robstudy

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
        assert html.count("data:image/png;base64") + html.count("<svg") >= 1, name   # figures: inline SVG, or PNG for images
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
    assert "Effective robustness: study" in html and "Per-shift table" in html and html.count("<svg") >= 2
    index = (reported["dir"] / "reports/index.html").read_text()
    for name in DEFAULT:
        assert f"digits/{name}.html" in index and f"digits/{name}.json" in index
    assert index.count("class='ok'") == len(DEFAULT)


def _machine_paths():
    "Absolute folders of this machine that no page may name."
    import site
    return {str(ROOT), str(ROOT.resolve()), sys.prefix, os.path.realpath(sys.prefix), *site.getsitepackages(), os.path.expanduser("~")}


def test_pages_end_with_config_and_provenance_from_the_store(reported):
    "Each page ends with one collapsed 'Config and provenance' line (written by the machinery), the config read from the study folder."
    folders = _machine_paths() | {str(reported["dir"]), str(reported["dir"].resolve())}
    for name in DEFAULT:
        page = (reported["out"] / f"{name}.html").read_text()
        sections = [m.start() for m in re.finditer(r'<section [^>]*class="rs-provenance"', page)]
        assert len(sections) == 1 and "<summary><strong>Config and provenance</strong>" in page, name
        assert sections[0] > max(page.rfind("<img"), page.rfind("<svg")) > 0, f"{name}: the section closes the page"
        assert 'class="rs-banner rs-warning"' not in page, f"{name}: the store's config is the composed one"
        assert "../../runs/digits/tables/meta.json" in page, name
        named = sorted(f for f in folders if f + "/" in page or f"{f}\"" in page)
        assert not named, f"{name}: the page names {named}"
        rec = json.loads((reported["out"] / f"{name}.record.json").read_text())
        recorded = rec["study_tables"]["recorded_config"]
        assert recorded["zoo"]["families"] == ["logreg", "mlp"] and recorded["shifts"]["names"] == ["gaussian_noise", "rotation"]
        assert rec["study_tables"]["differences"] == [] and rec["study_tables"]["rows"]["models"] == 8
    index = (reported["dir"] / "reports/index.html").read_text()
    named = sorted(f for f in folders if f + "/" in index or f"{f}\"" in index)
    assert not named, f"index.html names {named}"


def _tiny_notebook(folder: Path, body: str = "", **more) -> Path:
    "A report notebook of two cells (it takes a study's folder and config, like the shipped ones), written into `folder`."
    folder.mkdir(parents=True, exist_ok=True)
    params = 'study_dir = ""\nconfig = {}\nfigures_path = "tiny.json"\nn = 3' + "".join(f"\n{k} = {v!r}" for k, v in more.items())
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_markdown_cell("# A tiny report"),
        nbformat.v4.new_code_cell("import json\n" + body + "json.dump({'n_squared': n * n}, open(figures_path, 'w'))\nprint(n * n)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "tiny.ipynb")
    return folder


@pytest.mark.slow
def test_report_warns_when_the_composition_differs_from_the_store(own, tmp_path):
    "`robstudy run zoo=tiny`, then `robstudy report` composing the default zoo: the page says so, the record keeps what the store recorded."
    nbs = _tiny_notebook(tmp_path / "nbs")
    default_zoo = [a for a in TINY if not a.startswith("zoo=")]
    r = run_robstudy("report", *default_zoo, f"report.dir={nbs}", "report.notebooks=[tiny]", cwd=own["dir"])
    assert r.returncode == 0, r.stdout + r.stderr
    page = (own["out"] / "tiny.html").read_text()
    warning = re.search(r'<div class="rs-banner rs-warning" role="alert">(.*?)</div>', page, flags=re.S)
    assert warning and "<code>zoo.families</code>: recorded <code>[\"logreg\", \"mlp\"]</code>" in warning.group(1), page[-3000:]
    assert page.index('class="rs-banner rs-warning"') < page.index("A tiny report") < page.index('class="rs-provenance"')   # first on the page
    rec = json.loads((own["out"] / "tiny.record.json").read_text())
    t = rec["study_tables"]
    assert t["recorded_config"]["zoo"]["families"] == ["logreg", "mlp"] and t["rows"]["models"] == 8
    assert rec["parameters"]["config"]["zoo"]["families"] != ["logreg", "mlp"]            # what was composed now
    assert {"zoo.families", "zoo.epochs"} <= {d["key"] for d in t["differences"]}
    assert "models × 5 settings" in page and "8 models" in page


KILLED = """
import sys
from robstudy.reports import run_report
run_report("tiny", {"n": 3, "hang": True}, sys.argv[1], nb_folder=sys.argv[2], study="s")
"""
HANG = "import os, time\nif hang:\n    open('kernel.pid', 'w').write(str(os.getpid()))\n    time.sleep(120)\n"


@pytest.mark.slow
def test_killed_report_is_not_recorded_ok(tmp_path):
    "A report killed (SIGKILL) while its notebook runs leaves no 'ok' record, no index link to its removed page, and the next run cleans up."
    from robstudy.reports import run_report, write_index
    nbs, out = _tiny_notebook(tmp_path / "nbs", HANG, hang=False), tmp_path / "reports" / "s"
    first = run_report("tiny", {"n": 2}, out, nb_folder=nbs, study="s")
    assert first["status"] == "ok" and (out / "tiny.html").exists()
    runner = subprocess.Popen([sys.executable, "-c", KILLED, str(out), str(nbs)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(1200):   # until the notebook runs its hanging cell
            if (out / "kernel.pid").exists() and (out / "kernel.pid").read_text(): break
            assert runner.poll() is None, "the report ended before it was killed"
            time.sleep(0.1)
        kernel = int((out / "kernel.pid").read_text())
    finally:
        runner.kill(); runner.wait()
    try: os.kill(kernel, signal.SIGKILL)   # the kernel the killed runner started
    except ProcessLookupError: pass        # it noticed its parent was gone, and ended
    rec = json.loads((out / "tiny.record.json").read_text())
    assert rec["status"] != "ok" and rec.get("html") is None, rec
    assert not (out / "tiny.html").exists() and not (out / "tiny.ipynb").exists()   # the older run's files are gone
    assert (out / ".tiny.running.ipynb").exists()                                   # what the kill left behind
    index = write_index(tmp_path / "reports").read_text()
    assert "interrupted" in index and "class='ok'" not in index and 'href="s/' not in index, index
    again = run_report("tiny", {"n": 3}, out, nb_folder=nbs, study="s")
    assert again["status"] == "ok" and not again["cached"] and again["figures"] == {"n_squared": 9}
    assert not (out / ".tiny.running.ipynb").exists()
    assert "class='ok'" in write_index(tmp_path / "reports").read_text()


SLOW = "import os, time\ntime.sleep(1.0)\nopen('cwd.txt', 'w').write(os.getcwd())\n"


def test_reports_rendered_at_once_stay_in_their_folders(tmp_path):
    "Reports rendered from threads at once (as the course test and a user's own loop may) each write into their own folder, and the caller's folder is unchanged."
    from concurrent.futures import ThreadPoolExecutor
    from robstudy.reports import run_report
    nbs, here = _tiny_notebook(tmp_path / "nbs", SLOW), os.getcwd()
    outs = [tmp_path / "reports" / f"s{i}" for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        recs = list(pool.map(lambda i: run_report("tiny", {"n": i + 2}, outs[i], nb_folder=nbs, study=f"s{i}"), range(3)))
    assert os.getcwd() == here
    for i, (out, rec) in enumerate(zip(outs, recs)):
        assert rec["status"] == "ok", rec.get("error")
        assert json.loads((out / "tiny.json").read_text()) == {"n_squared": (i + 2) ** 2} == rec["figures"]
        assert Path((out / "cwd.txt").read_text()) == out.resolve()


@pytest.mark.slow
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


@pytest.mark.slow
def test_force_reruns(own):
    rec = own["out"] / "correlation.record.json"
    before = rec.stat().st_mtime_ns
    forced = run_robstudy("report", *TINY, "report.notebooks=[correlation]", "report.force=true", cwd=own["dir"])
    assert forced.returncode == 0 and "unchanged" not in forced.stdout, forced.stdout + forced.stderr
    assert rec.stat().st_mtime_ns != before


@pytest.mark.parametrize("override,expect", [
    ("+report.parameters.shift_gallery.n_images=three", "parameter 'n_images' of report 'shift_gallery' must be int"),
    pytest.param("+report.parameters.shift_gallery.bogus=1", "unknown parameter(s) ['bogus'] for report 'shift_gallery'", marks=pytest.mark.slow),
    pytest.param("+report.parameters.nope.x=1", "names report(s) ['nope']", marks=pytest.mark.slow),
    pytest.param("report.notebooks=[nope]", "unknown report 'nope'; expected one of", marks=pytest.mark.slow),
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


@pytest.mark.slow
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
