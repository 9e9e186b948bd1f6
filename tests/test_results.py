"Bad input over files: every rejection is an IngestError naming the file, line and column, and stores nothing."
import json

import pytest

from robstudy.tables import Tables
from robstudy.ingest import IngestError, ingest, ingest_into

GOOD = "model,val,imagenet-r\nresnet50,76.13,36.2\nalexnet,56.52,\n"
CASES = [  # (file text, reader kwargs, line, column, words in the message)
    ("model,val,imagenet-r\nresnet50,76.13,136.2\n", {}, 2, "imagenet-r", "outside the declared percent scale"),
    ("model,val,imagenet-r\nresnet50,nan,36.2\n", {}, 2, "val", "'nan' is not a number"),
    ("model,val,imagenet-r\nresnet50,76.1,36.2\n\nresnet50,70,30\n", {}, 4, "model", "duplicated model 'resnet50' (first on line 2)"),
    ("model,val,imagenet-r\nresnet50,0.76,0.36\n", {"scale": "fraction"}, 2, None, None),   # fine: fractions declared
    ("model,val,imagenet-r\nresnet50,76,36\n", {"scale": "fraction"}, 2, "val", "declare scale='percent'"),
    ("net,val\nresnet50,76\n", {}, 1, "model", "missing required column 'model'"),
]


@pytest.mark.parametrize("text,kw,line,column,words", CASES)
def test_testbed_bad_input(tmp_path, text, kw, line, column, words):
    f = tmp_path/"top1.csv"; f.write_text(text)
    if words is None:
        assert len(ingest(f, "testbed", **kw).evals) == 2; return
    with pytest.raises(IngestError) as e: ingest(f, "testbed", **kw)
    assert (e.value.path, e.value.line, e.value.column) == (str(f), line, column) and words in str(e.value)


def test_rejected_input_leaves_store_untouched(tmp_path):
    good, bad = tmp_path/"good.csv", tmp_path/"bad.csv"
    good.write_text(GOOD); bad.write_text("model,val\nvit,101\n")
    store = tmp_path/"store"
    ingest_into(store, good, "testbed")
    files = lambda: {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}
    before = files()
    with pytest.raises(IngestError, match="bad.csv, line 2, column 'val'"): ingest_into(store, bad, "testbed")
    ingest_into(store, good, "testbed")   # the same file again: nothing new, nothing written
    assert files() == before
    assert len(Tables.load(store/"tables").evals) == 3


def test_json_records_name_the_record(tmp_path):
    f = tmp_path/"evals.json"
    f.write_text(json.dumps([{"model": "a", "test_score": 0.5, "shift_score": 0.4}, {"model": "b", "test_score": "x", "shift_score": 0.4}]))
    with pytest.raises(IngestError) as e: ingest(f, "linefit")
    assert (e.value.where, e.value.column) == ("record 2", "test_score")


def test_unknown_format_and_scale(tmp_path):
    f = tmp_path/"t.csv"; f.write_text(GOOD)
    with pytest.raises(ValueError, match="format='excel' is not one of"): ingest(f, "excel")
    with pytest.raises(ValueError, match="scale 'pct' is not one of"): ingest(f, "testbed", scale="pct")
    with pytest.raises(ValueError, match="declare scale="): ingest(f, "table", layout="wide", columns={"model_id": "model"}, id_settings=["val"])
