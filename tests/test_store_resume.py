"""The results store under crashes and concurrency: a study SIGKILLed at any moment and re-run ends with exactly
the tables of an uninterrupted run; two workers writing one study at once corrupt nothing and train nothing twice;
torn checkpoints are retrained; the consolidated tables are never a mix of two runs."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDY = dict(study={"name": "resume", "seed": 0}, data={"name": "digits", "test_fraction": 0.3, "seed": 0},
             zoo=dict(families=["logreg", "mlp"], widths=[16], epochs=[1, 2], train_fractions=[1.0], seeds=[0]),
             shifts={"names": ["gaussian_noise", "contrast"], "severities": [1, 3], "seed": 0}, device="cpu")
N_MODELS, N_SETTINGS = 4, 5
RUNNER = ("import json, sys; from robstudy.evaluate import run_study; "
          "r = run_study(json.loads(sys.argv[1]), folder=sys.argv[2], progress=False); print(r.summary())")


def _env(kill_at=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("ROBSTUDY_KILL_AT", None)
    if kill_at: env["ROBSTUDY_KILL_AT"] = kill_at
    return env


def _start(folder, cfg=STUDY, kill_at=None):
    return subprocess.Popen([sys.executable, "-c", RUNNER, json.dumps(cfg), str(folder)], env=_env(kill_at),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(folder, cfg=STUDY, kill_at=None):
    p = _start(folder, cfg, kill_at)
    out, err = p.communicate(timeout=600)
    return p.returncode, out, err


def _counts(out):
    m = re.search(r"trained (\d+), loaded (\d+), evaluated (\d+), reused (\d+) records", out)
    assert m, out
    return tuple(int(g) for g in m.groups())


def _tables(folder):
    from robstudy.tables import Tables
    return Tables.load(Path(folder) / "tables")


def _same_tables(a, b):
    pd.testing.assert_frame_equal(a.evals, b.evals)
    pd.testing.assert_frame_equal(a.models.drop(columns="train_seconds"), b.models.drop(columns="train_seconds"))
    pd.testing.assert_frame_equal(a.settings, b.settings)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    "The tables of an uninterrupted run."
    d = tmp_path_factory.mktemp("reference")
    rc, out, err = _run(d)
    assert rc == 0, err
    assert _counts(out) == (N_MODELS, 0, N_MODELS * N_SETTINGS, 0)
    t = _tables(d)
    assert len(t.evals) == N_MODELS * N_SETTINGS and not t.evals.duplicated(["model_id", "setting_id"]).any()
    return t


# crash points: after the 2nd checkpoint (lock held, metadata row not yet written), after the 1st, 7th and last
# eval record, with the tables written but not yet renamed into place, and just before the link is swapped
@pytest.mark.parametrize("kill_at", [*(pytest.param(k, marks=pytest.mark.slow) for k in ["train:2", "train:3", "eval:1"]), "eval:7",
                                     *(pytest.param(k, marks=pytest.mark.slow) for k in [f"eval:{N_MODELS * N_SETTINGS}", "tables:1", "swap:1"])])
def test_sigkill_then_rerun_gives_the_same_tables(reference, tmp_path, kill_at):
    rc, out, err = _run(tmp_path, kill_at=kill_at)
    assert rc == -signal.SIGKILL, (rc, out, err)
    rc, out, err = _run(tmp_path)
    assert rc == 0, err
    trained, loaded, evaluated, reused = _counts(out)
    assert evaluated + reused == N_MODELS * N_SETTINGS
    _same_tables(_tables(tmp_path), reference)
    assert not list((tmp_path / "locks").glob("*.lock")), "a finished run leaves no locks behind"


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.5, 2.5, 4.0])
def test_sigkill_at_a_random_moment(reference, tmp_path, delay):
    for _ in range(2):  # killed twice in a row, then left to finish
        p = _start(tmp_path)
        time.sleep(delay)
        p.kill(); p.communicate()
    rc, out, err = _run(tmp_path)
    assert rc == 0, err
    _same_tables(_tables(tmp_path), reference)


@pytest.mark.slow
def test_tables_are_never_a_mix_of_two_runs(reference, tmp_path):
    rc, _, err = _run(tmp_path)
    assert rc == 0, err
    grown = {**STUDY, "shifts": {**STUDY["shifts"], "severities": [1, 3, 5]}}
    for point in ("tables:1", "swap:1"):
        rc, _, _ = _run(tmp_path, grown, kill_at=point)
        assert rc == -signal.SIGKILL
        _same_tables(_tables(tmp_path), reference)   # still the whole previous version
    rc, out, err = _run(tmp_path, grown)
    assert rc == 0, err
    assert _counts(out)[2] == 0, "the killed runs had already stored every record"
    t = _tables(tmp_path)
    assert len(t.evals) == N_MODELS * (N_SETTINGS + 2) and set(t.evals.setting_id) == set(t.settings.setting_id)


@pytest.mark.slow
def test_two_workers_at_once(tmp_path_factory):
    "Seeds [0] and [0, 1] into one folder at the same time: nothing corrupt, nothing trained twice."
    both = {**STUDY, "zoo": {**STUDY["zoo"], "seeds": [0, 1]}}
    ref_dir = tmp_path_factory.mktemp("ref2")
    rc, _, err = _run(ref_dir, both)
    assert rc == 0, err
    shared = tmp_path_factory.mktemp("shared")
    procs = [_start(shared, STUDY), _start(shared, both)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    counts = [_counts(out) for out, _ in outs]
    assert sum(c[0] for c in counts) == 2 * N_MODELS, counts   # each distinct model trained exactly once
    rc, out, err = _run(shared, both)
    assert rc == 0, err
    assert _counts(out)[:3] == (0, 0, 0), out
    _same_tables(_tables(shared), _tables(ref_dir))


@pytest.mark.slow
def test_torn_checkpoints_are_retrained(reference, tmp_path):
    from robstudy.store import ResultsStore
    rc, _, err = _run(tmp_path)
    assert rc == 0, err
    store = ResultsStore(tmp_path)
    a, b = reference.models.model_id[:2]
    st = store.model_stem(a).with_suffix(".safetensors")
    st.write_bytes(st.read_bytes()[:len(st.read_bytes()) // 2])      # weights cut short, json intact
    store.model_stem(b).with_suffix(".json").unlink()                 # weights present, json missing
    for m in (a, b):
        for p in store.eval_path(m, "x").parent.glob("*.json"): p.unlink()
    rc, out, err = _run(tmp_path)
    assert rc == 0, err
    assert (_counts(out)[0], _counts(out)[2]) == (2, 2 * N_SETTINGS), out
    _same_tables(_tables(tmp_path), reference)


@pytest.mark.slow
def test_stale_lock_of_a_dead_worker_is_broken(reference, tmp_path):
    from robstudy.store import ResultsStore
    import socket
    store = ResultsStore(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"]); dead.wait()
    for m in reference.models.model_id:
        store.lock(m).path.parent.mkdir(parents=True, exist_ok=True)
        store.lock(m).path.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "time": time.time()}))
    rc, out, err = _run(tmp_path)
    assert rc == 0, err
    assert _counts(out)[0] == N_MODELS, out
    _same_tables(_tables(tmp_path), reference)


@pytest.mark.slow
def test_damaged_tables_are_rebuilt_not_reused(reference, tmp_path):
    "A no-op re-run checks the consolidated tables: duplicated rows and an accuracy of 1.7 are rebuilt from the records."
    rc, _, err = _run(tmp_path)
    assert rc == 0, err
    evals = tmp_path / "tables" / "evals.parquet"
    ev = pd.read_parquet(evals)
    bad = pd.concat([ev, ev.iloc[:3]], ignore_index=True)
    bad.loc[0, "accuracy"] = 1.7
    evals.write_bytes(bad.to_parquet(index=False))
    rc, out, err = _run(tmp_path)
    assert rc == 0, err
    assert "fail their checks" in err and "rebuilding them from the records" in err, err
    _same_tables(_tables(tmp_path), reference)


@pytest.mark.slow
def test_impossible_and_truncated_records_are_named_and_recomputed(reference, tmp_path):
    from robstudy.store import ResultsStore
    rc, _, err = _run(tmp_path)
    assert rc == 0, err
    store = ResultsStore(tmp_path)
    m, sids = reference.models.model_id[0], reference.settings.setting_id.tolist()
    p0, p1 = store.eval_path(m, sids[0]), store.eval_path(m, sids[1])
    rec = json.loads(p0.read_text()); p0.write_text(json.dumps({**rec, "correct": rec["n"] + 5}))   # correct > n
    p1.write_text(p1.read_text()[:25])                                                            # truncated
    (tmp_path / "tables").unlink()   # so the run cannot take the no-op path
    rc, out, err = _run(tmp_path)
    assert rc == 0, err
    assert f"{p0}: correct=" in err and f"{p1}: unreadable" in err and err.count("recomputing it") == 2, err
    assert _counts(out)[2] == 2, out
    _same_tables(_tables(tmp_path), reference)


@pytest.mark.slow
def test_damaged_derived_files_are_rebuilt(reference, tmp_path):
    "A truncated data cache, a truncated model_meta row and a truncated record do not block later runs, even when the grid changes."
    rc, _, err = _run(tmp_path)
    assert rc == 0, err
    cache = next((tmp_path / ".cache").glob("data-*.json"))
    cache.write_text(cache.read_text()[:10])
    meta = next((tmp_path / "model_meta").glob("*.json"))
    meta.write_text(meta.read_text()[:10])
    rec = next((tmp_path / "evals").glob("*/*.json"))
    rec.write_text(rec.read_text()[:10])
    rc, out, err = _run(tmp_path)
    assert rc == 0, err
    assert f"{cache}: damaged; rebuilding it" in err and f"model_meta/{meta.stem}.json: damaged; rebuilding it" in err, err
    _same_tables(_tables(tmp_path), reference)
    grown = {**STUDY, "shifts": {**STUDY["shifts"], "severities": [1, 3, 5]}}
    next((tmp_path / "evals").glob("*/*.json")).write_text("{")
    rc, out, err = _run(tmp_path, grown)
    assert rc == 0, err
    assert "recomputing it" in err


@pytest.mark.slow
def test_a_lock_from_another_host_is_reported_while_waiting(tmp_path):
    "A lock naming a process that cannot be checked (another host) makes the run wait, and say for what and how to clear it."
    from robstudy.checkpoints import model_id
    from robstudy.datasets import load_dataset
    from robstudy.zoo import zoo_grid
    fp = load_dataset("digits", test_fraction=0.3, seed=0).fingerprint()
    mid = model_id(zoo_grid(STUDY["zoo"])[0], fp)
    lock = tmp_path / "locks" / f"{mid}.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"host": "elsewhere.example", "pid": 1, "time": time.time() - 120}))
    p = _start(tmp_path)
    err, t0 = "", time.time()
    while "waiting for model" not in err and time.time() - t0 < 120:
        line = p.stderr.readline()
        if not line: break
        err += line
    assert f"waiting for model {mid}: locked by process 1 on host 'elsewhere.example'" in err and f"delete {lock}" in err, err
    lock.unlink()                            # what the message says to do
    out, rest = p.communicate(timeout=300)
    assert p.returncode == 0, err + rest
    assert _counts(out)[0] == N_MODELS
