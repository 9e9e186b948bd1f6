"""The `robstudy` command end to end: run, resume, report, bad input."""
import json
import re

import pandas as pd
import pytest

from conftest import SHARED, copy_study, run_robstudy

TINY = SHARED


@pytest.fixture
def study(shared_study):
    "The shared tiny study: run once, run again, reported (read only)."
    return shared_study


def test_run_trains_and_evaluates(study):
    r = study["first"]
    assert r["returncode"] == 0, r["stderr"]
    assert re.search(r"8 models × 5 settings: trained 8, loaded 0, evaluated 40, reused 0", r["stdout"]), r["stdout"]
    ev = pd.read_parquet(study["dir"] / "runs/digits/tables/evals.parquet")
    assert len(ev) == 8 * 5 and ev["n"].eq(539).all() and ev.correct.le(ev.n).all()
    assert set(ev.device) == {"cpu"} and set(ev.precision) == {"fp32"}


def test_rerun_reuses_everything(study):
    r = study["second"]
    assert r["returncode"] == 0, r["stderr"]
    assert "trained 0, loaded 0, evaluated 0, reused 40" in r["stdout"], r["stdout"]


@pytest.mark.slow
def test_same_seed_same_numbers(study, tmp_path):
    other = run_robstudy("run", *TINY, cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    a = pd.read_parquet(study["dir"] / "runs/digits/tables/evals.parquet")
    b = pd.read_parquet(tmp_path / "runs/digits/tables/evals.parquet")
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("override,expect", [
    ("study=nope", "Available options in 'study'"),
    ("zoo=huge", "Available options in 'zoo'"),
    pytest.param("shifts=nope", "Available options in 'shifts'", marks=pytest.mark.slow),
    ("shifts.names=[fog9]", "unknown shift 'fog9'; expected one of"),
    pytest.param("zoo.families=[vit9]", "unknown model family 'vit9'", marks=pytest.mark.slow),
    ("zoo.seed=[0,1]", "zoo.seed"),                                   # a typo'd key (the schema knows zoo.seeds)
    pytest.param("repot.force=true", "repot", marks=pytest.mark.slow),
    ("study.name=../../x", "study.name='../../x' is not a plain name"),
    pytest.param("study.name=/tmp/abs", "is not a plain name", marks=pytest.mark.slow),
    pytest.param("shifts.severities=[]", "shifts.severities=[]", marks=pytest.mark.slow),
    pytest.param("shifts.severities=[true]", "shifts.severities contains True", marks=pytest.mark.slow),
])
def test_bad_names_fail_with_choices(tmp_path, override, expect):
    r = run_robstudy("run", override, "device=cpu", cwd=tmp_path)
    assert r.returncode != 0
    assert expect in r.stdout + r.stderr, r.stdout + r.stderr
    assert not (tmp_path / "runs/digits/models").exists(), "nothing may be trained before the names are checked"
    assert not [p for p in tmp_path.parent.iterdir() if p.name == "x"] and not (tmp_path / "runs").exists(), "nothing is written"


@pytest.mark.slow
def test_report_before_run_is_an_error(tmp_path):
    r = run_robstudy("report", *TINY, cwd=tmp_path)
    assert r.returncode != 0 and "run `robstudy run study=digits` first" in r.stdout + r.stderr


@pytest.mark.slow
def test_failed_report_is_marked_failed(study, tmp_path):
    import nbformat
    study = dict(study, dir=copy_study(study, tmp_path / "study"))
    nbs = tmp_path / "nbs"; nbs.mkdir()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("study_dir = ''\nconfig = {}\nfigures_path = ''", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("raise RuntimeError('the data went missing')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbs / "boom.ipynb")
    r = run_robstudy("report", *TINY, f"report.dir={nbs}", "report.notebooks=[boom]", cwd=study["dir"])
    assert r.returncode != 0
    out = study["dir"] / "reports/digits"
    assert not (out / "boom.html").exists() and (out / "boom.failed.ipynb").exists()
    rec = json.loads((out / "boom.record.json").read_text())
    assert rec["status"] == "failed" and "the data went missing" in rec["error"]
    index = (study["dir"] / "reports/index.html").read_text()
    assert "class='failed'" in index and "the data went missing" in index
