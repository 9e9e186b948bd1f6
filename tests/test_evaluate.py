"""The evaluation engine from outside a notebook: progress off a terminal, stored predictions never unpickled,
bad groups, and the cheap nothing-to-do path."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDY = dict(study={"name": "ev", "seed": 0}, data={"name": "digits", "test_fraction": 0.3, "seed": 0},
             zoo=dict(families=["logreg"], epochs=[1, 2], seeds=[0, 1]),
             shifts={"names": ["contrast"], "severities": [1, 2, 3], "seed": 0}, device="cpu")


def test_progress_off_a_terminal_is_a_few_lines(tmp_path):
    code = ("import json, sys; from robstudy.evaluate import run_study; "
            "run_study(json.loads(sys.argv[1]), folder=sys.argv[2], progress=True)")
    r = subprocess.run([sys.executable, "-c", code, json.dumps(STUDY), str(tmp_path)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert any(l.startswith("train: 4/4") for l in lines) and any(l.startswith("evaluate: 16/16") for l in lines), lines
    assert len(lines) <= 12 and "\r" not in r.stderr, lines


def test_predictions_are_stored_without_pickles(tmp_path):
    from robstudy.evaluate import ResultsStore, run_study
    from robstudy.store import prediction_matrix
    r = run_study({**STUDY, "store_predictions": True}, folder=tmp_path, progress=False)
    store = ResultsStore(tmp_path)
    mids, sid = r.tables.models.model_id.tolist(), r.tables.settings.setting_id[0]
    P = prediction_matrix(store, mids, sid)
    assert P["pred"].shape == (len(mids), 539) and P["prob"].max() <= 1 and P["y"].dtype == np.int32
    bad = store.pred_path(mids[0], sid)
    np.savez(bad, pred=np.array([object()], dtype=object), prob=np.zeros(1), y=np.zeros(1))
    with pytest.raises(ValueError, match="allow_pickle"):
        store.predictions(mids[0], sid)
    with pytest.raises(FileNotFoundError, match="store_predictions: true"):
        store.predictions(mids[0], "nope")
    # predictions missing for one pair: that pair (only) is recomputed, to the same numbers
    bad.unlink()
    again = run_study({**STUDY, "store_predictions": True}, folder=tmp_path, progress=False)
    assert (again.trained, again.evaluated) == (0, 1)
    assert again.tables.evals.equals(r.tables.evals)


def test_nothing_to_do_skips_loading_the_data(tmp_path, monkeypatch):
    from robstudy import evaluate
    first = evaluate.run_study(STUDY, folder=tmp_path, progress=False)
    monkeypatch.setattr(evaluate, "load_dataset", lambda *a, **k: pytest.fail("the data was loaded"))
    again = evaluate.run_study(STUDY, folder=tmp_path, progress=False)
    assert (again.trained, again.loaded, again.evaluated, again.reused) == (0, 0, 0, 16)
    assert again.tables.evals.equals(first.tables.evals)
    # a record gone missing: the full path runs again and recomputes just it
    monkeypatch.undo()
    evaluate.ResultsStore(tmp_path).eval_path(first.tables.evals.model_id[0], first.tables.evals.setting_id[0]).unlink()
    third = evaluate.run_study(STUDY, folder=tmp_path, progress=False)
    assert (third.loaded, third.evaluated, third.reused) == (1, 1, 15)


def test_groups_of_the_wrong_length_are_an_error():
    import torch
    from robstudy.evaluate import classification_metrics
    with pytest.raises(ValueError, match=r"groups has shape \(3,\); expected one group per test example \(4,\)"):
        classification_metrics(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), groups=[0, 1, 0])
