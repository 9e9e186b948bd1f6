"""Names that are markup (in models, settings, a file name, study-like metadata and config values) stay text in a report
read in headless Chromium: the page's DOM holds nothing they would inject and no script of theirs runs; scripts run only
by hash under the page's CSP. (A file apart from test_browser.py: it needs no shared study, so it runs beside those.)"""
import csv
import os
import re
import sys
import time
from pathlib import Path

import pytest

from test_browser import page, pytestmark  # noqa: F401  (its Chromium tab fixture, and its skip when Chromium is absent)


# each would mark the page (data-pwned) if it ran, and each would add an element or attribute if it were not escaped
EVIL = {
    "setting": "<img src=x onerror=document.body.setAttribute('data-pwned','setting')>",
    "code": "`</code><img src=y onerror=document.body.setAttribute('data-pwned','code')>`",
    "model": "<script>document.body.setAttribute('data-pwned','model')</script>",
    "link": "[click](javascript:document.body.setAttribute('data-pwned','link'))",
    "type": "<svg onload=document.body.setAttribute('data-pwned','type')>",
    "config": "<iframe srcdoc=\"<script>parent.document.body.setAttribute('data-pwned','config')</script>\"></iframe>",
    "study": "<b onmouseover=document.body.setAttribute('data-pwned','study')>study</b>",
    "file": "<img src=z onerror=document.body.setAttribute('data-pwned','file')>",
}

DOM = """(() => { const all = [...document.querySelectorAll('*')];
  return {pwned: document.body.getAttribute('data-pwned'),
          handlers: all.flatMap(el => [...el.attributes].filter(a => a.name.toLowerCase().startsWith('on')).map(a => el.tagName + '.' + a.name)),
          scripts: [...document.scripts].map(s => s.textContent.slice(0, 80)),
          frames: document.querySelectorAll('iframe, object, embed, frame').length,
          foreign_images: [...document.images].filter(i => !i.src.startsWith('data:')).map(i => i.src),
          script_links: [...document.querySelectorAll('a[href]')].filter(a => !/^(https?|file|mailto):$/.test(a.protocol)).map(a => a.href),
          shown: document.body.innerText, text: document.body.textContent,
          csp: (document.querySelector('meta[http-equiv="Content-Security-Policy"]') || {}).content}; })()"""


@pytest.fixture
def hostile(tmp_path):
    "The reanalysis report of a published-style table whose names are markup, for a study whose recorded config is markup too."
    from robstudy.ingest import ingest
    from robstudy.reports import run_report, write_index
    settings = ["val", "v2", EVIL["setting"], EVIL["code"]]
    table = tmp_path / (EVIL["file"] + ".csv")
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "model_type", *settings])
        for i in range(12):
            a = 0.55 + 0.035 * i
            name = EVIL["model"] if i == 3 else EVIL["link"] if i == 7 else f"m{i}"
            kind = EVIL["type"] if i % 3 == 0 else "cnn"
            w.writerow([name, kind, f"{a:.3f}", f"{a - 0.1 + 0.01 * (i % 4):.3f}", f"{a - 0.3 + 0.02 * (i % 3):.3f}", f"{a - 0.2:.3f}"])
    options = {"layout": "wide", "id_settings": ["val"], "scale": "fraction", "columns": {"model_id": "model"}, "model_columns": ["model_type"]}
    study = tmp_path / "runs" / "s"
    tables = ingest(table, "table", **options)
    tables.meta.update(study=EVIL["study"], config={"zoo": {"families": [EVIL["config"]]}, "data": {"name": EVIL["study"]}})
    tables.save(study / "tables")
    config = {"study": {"name": "s", "transform": "probit", "note": EVIL["study"]}, "zoo": {"families": ["mlp", EVIL["config"] + "!"]},
              "data": {"name": "digits"}, "device": "cpu", "paths": {"runs": str(tmp_path / "runs")}}
    params = {"study_dir": str(study), "config": config, "table_path": str(table), "ingest_options": options, "max_fits": 3}
    rec = run_report("reanalysis", params, tmp_path / "reports" / "s", study=EVIL["study"], device="cpu")
    assert rec["status"] == "ok", rec.get("error")
    write_index(tmp_path / "reports")
    return tmp_path


def _folders(tmp_path):
    import site
    return {str(tmp_path), os.path.realpath(tmp_path), str(Path(__file__).resolve().parents[1]), sys.prefix, os.path.realpath(sys.prefix),
            *site.getsitepackages()}


def test_hostile_names_stay_text(hostile, page, tmp_path):
    report = hostile / "reports" / "s" / "reanalysis.html"
    raw = report.read_text()
    for v in (EVIL["setting"], EVIL["file"], EVIL["config"]):
        assert v not in raw                                          # escaped where they were written
    page.open(report.as_uri())
    page.eval("document.querySelectorAll('details').forEach(d => d.open = true); 0")   # render what is collapsed too
    time.sleep(0.5)
    dom = page.eval(DOM)
    assert dom["pwned"] is None, dom["pwned"]
    assert dom["handlers"] == [] and dom["frames"] == 0 and dom["foreign_images"] == [] and dom["script_links"] == [], dom
    assert not [s for s in dom["scripts"] if "pwned" in s], dom["scripts"]
    assert EVIL["setting"] in dom["shown"] and EVIL["file"] in dom["shown"]   # shown as the text they are
    assert "<script>parent.document.body" in dom["text"] and "zoo.families" in page.eval("document.querySelector('.rs-warning').innerText")
    # scripts: only robstudy's own, each allowed by its hash (never 'unsafe-inline', never a source from anywhere)
    from robstudy.reports import content_security_policy, trusted_scripts
    script_src = re.search(r"script-src ([^;]*)", dom["csp"]).group(1).split()
    assert dom["csp"] == content_security_policy(trusted_scripts()) and "default-src 'none'" in dom["csp"]
    assert script_src and all(re.fullmatch(r"'sha256-[A-Za-z0-9+/]+=*'", s) for s in script_src), script_src
    named = sorted(f for f in _folders(tmp_path) if f in dom["text"])
    assert not named, f"the page names {named}"
    assert page.eval("document.querySelectorAll('section.rs-provenance details').length") >= 1
    page.screenshot(tmp_path / "hostile.png")
    page.open((hostile / "reports" / "index.html").as_uri())
    page.eval("document.querySelectorAll('details').forEach(d => d.open = true); 0")
    time.sleep(0.5)
    dom = page.eval(DOM)
    assert dom["pwned"] is None and dom["handlers"] == [] and dom["frames"] == 0 and dom["foreign_images"] == [], dom
    assert EVIL["study"] in dom["shown"] and dom["csp"]
    assert page.eval("[...document.querySelectorAll('a')].map(a => a.getAttribute('href'))") == ["s/reanalysis.html", "s/reanalysis.ipynb", "s/reanalysis.json"]
    named = sorted(f for f in _folders(tmp_path) if f in dom["text"])
    assert not named, f"the index names {named}"
    left = [u for u in page.requests if not u.startswith(("file:", "data:", "about:"))]
    assert not left, f"requests that left the machine: {left}"
