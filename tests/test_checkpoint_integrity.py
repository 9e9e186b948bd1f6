"""Issue 16 item 4: a checkpoint whose weights were overwritten after saving (payload replaced, header intact) or whose
record contradicts its model id (an edited seed) is reported and the model retrained, never used silently."""
import json

import pandas as pd
import torch

from robstudy.evaluate import run_study

STUDY = dict(study={"name": "ckpt", "seed": 0}, data={"name": "digits", "test_fraction": 0.3, "seed": 0},
             zoo=dict(families=["logreg", "mlp"], widths=[16], epochs=[2], train_fractions=[1.0], seeds=[0]),
             shifts={"names": ["gaussian_noise"], "severities": [1], "seed": 0}, device="cpu")


def _randomise_payload(path):
    "Overwrite the tensors of a safetensors file with random floats, leaving its header (names, shapes) intact."
    raw = bytearray(path.read_bytes()); hdr = 8 + int.from_bytes(raw[:8], "little")
    g = torch.Generator().manual_seed(1)
    raw[hdr:] = torch.rand((len(raw) - hdr) // 4, generator=g).numpy().tobytes()[: len(raw) - hdr]
    path.write_bytes(bytes(raw))


def _acc(tables):
    e = tables.evals.merge(tables.settings[["setting_id", "shift", "severity"]], on="setting_id")
    return e.set_index(["model_id", "shift", "severity"]).accuracy.sort_index()


def test_overwritten_weights_and_edited_records_are_retrained(tmp_path, capfd):
    first = run_study(STUDY, folder=tmp_path, progress=False)
    assert first.trained == 2
    stems = sorted((tmp_path / "models").glob("*.safetensors"))
    _randomise_payload(stems[0])                                        # weights overwritten, header intact
    rec = json.loads(stems[1].with_suffix(".json").read_text())
    rec["config"]["seed"] = 7; stems[1].with_suffix(".json").write_text(json.dumps(rec))   # a record that lies about the model
    capfd.readouterr()
    grown = dict(STUDY, shifts={**STUDY["shifts"], "severities": [1, 3]})   # a new setting: both models must be used again
    again = run_study(grown, folder=tmp_path, progress=False)
    err = capfd.readouterr().err
    assert "not the ones saved with it" in err, again.summary() + err
    assert f"does not describe model {stems[1].stem}" in err, err
    assert (again.loaded, again.trained) == (0, 2), again.summary()
    a = _acc(again.tables)
    pd.testing.assert_series_equal(a.loc[pd.IndexSlice[:, :, [0.0, 1.0]]], _acc(first.tables), check_names=False)  # the same numbers
    assert (a > 0.5).all(), "no model scores at chance"
