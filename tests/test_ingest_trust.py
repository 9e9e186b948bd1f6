"""Ingest that can be trusted (issue 16, items 9 and 13; issue 18's README finding): the declared scale is checked
whatever the file's size, `ingest_into` replaces a folder's tables as one atomic step (a kill leaves the old tables
or the new ones, never a mix), and ingesting the same file twice is harmless."""
import os
import signal

import numpy as np
import pandas as pd
import pytest

from robstudy.ingest import IngestError, ingest, ingest_into, read_qa, read_table, read_testbed
from robstudy.tables import Tables

FIRST = "model,val,imagenet-r\nresnet50,76.13,36.2\nalexnet,56.52,\n"
SECOND = "model,val,imagenet-r\nvit_b,81.1,45.0\nvgg16,71.6,27.0\nclip_l,75.3,77.7\n"


def _load(folder):
    "The folder's current tables (in `folder/tables`; robstudy before 0.2 wrote them into `folder` itself)."
    return Tables.load(folder / "tables" if (folder / "tables").exists() else folder)


def _snapshot(folder):
    "Every file under `folder` (links followed) with its bytes, lock files left out."
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".lock"}


# item 13: a fraction-valued file declared percent

@pytest.mark.parametrize("rows", [2, 30])
def test_fractions_declared_percent_are_an_error_whatever_the_size(tmp_path, rows):
    f = tmp_path / "top1.csv"
    f.write_text("model,val,imagenet-r\n" + "".join(f"m{i},0.{70 + i % 20},0.{30 + i % 20}\n" for i in range(rows)))
    with pytest.raises(IngestError, match=r"every value .* is at most 1 .*scale='percent'.*confirm_small_values=True"):
        read_testbed(f)                                       # the testbed's documented scale is percent
    t = read_testbed(f, confirm_small_values=True)           # the caller says these really are percentages below 1
    as_fractions = read_testbed(f, scale="fraction")
    assert len(as_fractions.evals) == 2 * rows
    np.testing.assert_allclose(t.evals.accuracy, as_fractions.evals.accuracy / 100)


def test_the_check_covers_every_reader_that_takes_percent(tmp_path):
    f = tmp_path / "t.csv"; f.write_text("model,val,v2\na,0.76,0.6\nb,0.81,0.7\n")
    with pytest.raises(IngestError, match="at most 1"):
        read_table(f, "wide", {"model_id": "model"}, scale="percent", id_settings=["val"])
    assert len(read_table(f, "wide", {"model_id": "model"}, scale="percent", id_settings=["val"], confirm_small_values=True).evals) == 4
    q = tmp_path / "qa.csv"; q.write_text("model_name,dataset,f1\na,squad,0.88\na,bioasq,0.5\n")
    with pytest.raises(IngestError, match="at most 1"):
        read_qa(q)                                            # F1 points declared (the QA study's scale)
    with pytest.raises(IngestError, match="at most 1"):
        ingest(f, "table", layout="wide", columns={"model_id": "model"}, scale="percent", id_settings=["val"])


def test_zeros_alone_are_not_taken_for_fractions(tmp_path):
    "0 % is 0 on every scale: a file of zeros (a broken attack, say) is not ambiguous."
    f = tmp_path / "top1.csv"; f.write_text("model,pgd\na,0\nb,0.0\nc,\n")
    assert read_testbed(f, roles={"pgd": "ood"}).evals.accuracy.tolist() == [0.0, 0.0]


# issue 18: the same ingest_into cell run twice

def test_ingesting_the_same_file_twice_changes_nothing(tmp_path):
    f = tmp_path / "top1.csv"; f.write_text(FIRST)
    folder = tmp_path / "published"
    first = ingest_into(folder, f, "testbed")
    before = _snapshot(folder)
    again = ingest_into(folder, f, "testbed")                 # the notebook cell re-run
    assert _snapshot(folder) == before
    pd.testing.assert_frame_equal(again.evals, first.evals)
    assert len(_load(folder).evals) == 3
    assert (folder / "tables" / "evals.parquet").exists()   # where a study keeps its tables: robstudy fit FOLDER/tables


def test_a_changed_file_is_a_conflict_unless_replaced(tmp_path):
    f = tmp_path / "top1.csv"; f.write_text(FIRST)
    folder = tmp_path / "published"
    ingest_into(folder, f, "testbed")
    f.write_text(FIRST.replace("76.13", "76.2"))
    with pytest.raises(ValueError, match=r"\('resnet50', 'val'\).*replace=True"):
        ingest_into(folder, f, "testbed")
    assert np.isclose(_load(folder).evals.set_index(["model_id", "setting_id"]).accuracy["resnet50", "val"], 0.7613)
    t = ingest_into(folder, f, "testbed", replace=True)
    assert np.isclose(t.evals.set_index(["model_id", "setting_id"]).accuracy["resnet50", "val"], 0.762)
    assert len(_load(folder).evals) == 3


def test_new_models_are_added_beside_identical_ones(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(FIRST); b.write_text(FIRST + "vit_b,81.1,45.0\n")
    folder = tmp_path / "published"
    ingest_into(folder, a, "testbed")
    t = ingest_into(folder, b, "testbed")                     # two pairs already there, identical; two new ones
    assert len(t.evals) == 5 and len(_load(folder).evals) == 5


# item 9: ingest_into killed half-way

def _killed_ingest(folder, path, point):
    "Run ingest_into in a forked child that SIGKILLs itself at `point`: writing that file, or a store crash point."
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            if point.startswith("env:"):
                os.environ["ROBSTUDY_KILL_AT"] = point[4:]
            else:
                import robstudy.tables as T
                real_b, real_j = T.atomic_write_bytes, T.atomic_write_json
                def die_at(real):
                    def write(p, *a, **k):
                        if os.path.basename(str(p)) == point: os.kill(os.getpid(), signal.SIGKILL)
                        return real(p, *a, **k)
                    return write
                T.atomic_write_bytes, T.atomic_write_json = die_at(real_b), die_at(real_j)
            ingest_into(folder, path, "testbed")
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return status


@pytest.mark.parametrize("point", ["models.parquet", "evals.parquet", "meta.json", "env:tables:1", "env:swap:1"])
def test_a_killed_ingest_leaves_the_old_tables_or_the_new_ones(tmp_path, point):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(FIRST); second.write_text(SECOND)
    folder = tmp_path / "published"
    old = ingest_into(folder, first, "testbed")
    status = _killed_ingest(folder, second, point)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"the child was not killed at {point}"
    now = _load(folder).validate()
    assert sorted(now.models.model_id) == sorted(old.models.model_id), "a killed ingest changed the tables"
    pd.testing.assert_frame_equal(now.evals.reset_index(drop=True), old.evals.reset_index(drop=True))
    assert len(now.meta["sources"]) == 1
    t = ingest_into(folder, second, "testbed")                # the re-run completes the ingest
    assert len(_load(folder).evals) == len(t.evals) == 3 + 6
