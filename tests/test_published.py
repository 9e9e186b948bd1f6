"""The published tables that ship inside robstudy: a rebuild from the released files gives the shipped copies, and a
wheel installed into a fresh virtual environment outside the checkout loads every one of them by name, and finds the
report notebooks and the course's lessons it carries (so `robstudy report` and `robstudy course` work after `pip install`)."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest

from robstudy.tables import Tables

from robstudy.core import read_json
from robstudy.published import PUBLISHED, build_published, published_catalog, published_names

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "robstudy" / "published_tables"


def _files(folder: Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_rebuild_gives_the_shipped_copies(reference, tmp_path):
    "build_published from the reference folder gives, table by table, what the package ships (and nothing else)."
    built = build_published(reference, tmp_path / "out")
    assert list(built) == published_names()
    assert {p.name for p in SHIPPED.iterdir() if p.is_dir()} == set(published_names()) | {"_licences"}
    for name in published_names():
        new, old = tmp_path / "out" / name, SHIPPED / name
        assert _files(new) == _files(old) == {"models.parquet", "settings.parquet", "evals.parquet", "meta.json",
                                              "SOURCE.json", "LICENSE", "NOTICE"}, name
        a, b = Tables.load(new), Tables.load(old)
        for part in ("models", "settings", "evals"):
            pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part), check_exact=True, obj=f"{name}.{part}")
        assert a.meta == b.meta, name
        assert read_json(new / "SOURCE.json") == read_json(old / "SOURCE.json"), name
        for text in ("LICENSE", "NOTICE"):
            assert (new / text).read_text() == (old / text).read_text(), (name, text)


def _site_packages(python) -> list:
    "The purelib and platlib folders of the environment of `python`."
    out = subprocess.run([str(python), "-c", "import json, sysconfig; p = sysconfig.get_paths(); print(json.dumps([p['purelib'], p['platlib']]))"],
                         capture_output=True, text=True, check=True, env=_clean_env())
    return list(dict.fromkeys(json.loads(out.stdout)))


def _clean_env() -> dict:
    "This process's environment without anything that would put the checkout on the path."
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


LOAD_ALL = """
import json, robstudy
from robstudy.published import load_published, published_names
out = {"file": robstudy.__file__, "tables": {}}
for name in published_names():
    t = load_published(name)
    out["tables"][name] = [len(t.models), len(t.settings), len(t.evals), int(t.evals.n.notna().sum()), t.meta["published"]["licence"]]
from robstudy.config import compose
from robstudy.reports import check_parameters, notebooks_dir, report_notebook
reports = compose(["study=digits"])["report"]["notebooks"] + ["reanalysis"]
out["reports"] = {}
for nb in reports:   # as `robstudy report` finds and checks them
    path = report_notebook(nb); check_parameters(path, {}); out["reports"][nb] = str(path)
out["notebooks"] = {kind: [str(p) for p in sorted(notebooks_dir(kind).glob("*.ipynb"))] for kind in ("reports", "course")}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_loads_every_table(tmp_path):
    "Build the wheel, install it (no dependencies) into a new venv outside the checkout, load every table by name there."
    src = tmp_path / "src"
    src.mkdir()
    for f in ("setup.py", "settings.ini", "pyproject.toml", "README.md"): shutil.copy2(ROOT / f, src / f)
    shutil.copytree(ROOT / "robstudy", src / "robstudy", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for kind in ("reports", "course"): shutil.copytree(ROOT / "nbs" / kind, src / "nbs" / kind)   # as an sdist carries them
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel"), "."],
                       cwd=src, capture_output=True, text=True, env=_clean_env())
    assert r.returncode == 0, r.stderr[-3000:]
    wheel, = (tmp_path / "wheel").glob("robstudy-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    fresh_site = Path(_site_packages(python)[0])
    # the dependencies come from this environment's site-packages, added as a plain path: its .pth files (the
    # checkout's editable install among them) are not processed, so robstudy can only come from the wheel
    deps = [p for p in _site_packages(sys.executable) if Path(p) != fresh_site]
    (fresh_site / "robstudy_test_dependencies.pth").write_text("".join(f"{p}\n" for p in deps))
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
                       capture_output=True, text=True, env=_clean_env())
    assert r.returncode == 0, r.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    r = subprocess.run([str(python), "-c", LOAD_ALL], cwd=work, capture_output=True, text=True, env=_clean_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).resolve().is_relative_to(fresh_site.resolve()), out["file"]
    assert not Path(out["file"]).resolve().is_relative_to(ROOT)
    cat = published_catalog().set_index("name")
    assert sorted(out["tables"]) == sorted(published_names())
    for name, (models, settings, evals, with_n, licence) in out["tables"].items():
        assert [models, settings, evals, with_n, licence] == [int(cat.loc[name, k]) for k in ("models", "settings", "evals", "evals_with_n")] + [PUBLISHED[name].licence], name
    assert out["tables"]["imagenet_testbed"][2] == out["tables"]["imagenet_testbed"][3] > 40000   # every testbed row has n
    for kind, paths in out["notebooks"].items():   # the report notebooks and the lessons travel in the wheel, unchanged
        assert [Path(p).name for p in paths] == sorted(p.name for p in (ROOT / "nbs" / kind).glob("*.ipynb")), kind
        for p in map(Path, paths):
            assert p.resolve().is_relative_to(fresh_site.resolve()) and p.read_bytes() == (ROOT / "nbs" / kind / p.name).read_bytes(), p
    assert sorted(out["reports"]) == sorted(["effective_robustness", "correlation", "shift_gallery", "adversarial", "reanalysis"])
    assert {str(Path(p).parent) for p in out["reports"].values()} == {str(Path(out["notebooks"]["reports"][0]).parent)}


@pytest.mark.slow
def test_reanalysis_report_reads_the_shipped_testbed_by_default(tmp_path):
    "The reanalysis report with no table given reanalyses the shipped ImageNet testbed, each OOD setting against its ID pair."
    from robstudy.reports import run_report
    rec = run_report("reanalysis", {"max_fits": 3}, tmp_path, nb_folder=ROOT / "nbs" / "reports", study="published")
    assert rec["status"] == "ok", rec.get("error")
    figs = rec["figures"]
    assert figs["published"] == "imagenet_testbed" and figs["table"] is None and figs["n_models"] == 338
    pairs = {f["setting"]: f["id_setting"] for f in figs["fits"]}
    assert len(pairs) == 3 and all(f["n_models"] > 300 for f in figs["fits"]), figs["fits"]
    assert pairs.get("imagenet-a", "val-on-imagenet-a-classes") == "val-on-imagenet-a-classes"
    page = (tmp_path / "reanalysis.html").read_text()
    assert "modestyachts/imagenet-testbed" in page and "MIT" in page and "Rohan Taori" in page
