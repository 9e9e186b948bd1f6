"""The spurious-attribute digits and the procedural shapes through the user's paths: the `robstudy` CLI with the
shipped hydra data configs (worst-group columns in the stored tables), and dataset lookup from `robstudy.data` alone."""
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_robstudy

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["zoo=tiny", "zoo.epochs=[3]", "zoo.train_fractions=[1.0]", "device=cpu", "progress=false",
         "shifts.names=[gaussian_noise]", "shifts.severities=[3]"]


@pytest.mark.slow
def test_cli_spurious_study_writes_worst_group_columns(tmp_path):
    r = run_robstudy("run", "data=digits_spurious", "data.strength=0.99", "data.test=independent", "study.name=spurious", *SMALL, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ev = pd.read_parquet(tmp_path / "runs/spurious/tables/evals.parquet")
    for col in ("worst_group_accuracy", "worst_group_n", "worst_group_correct", "worst_group_lo", "worst_group_hi", "n_groups"):
        assert col in ev.columns, (col, list(ev.columns))
    assert ev.n_groups.eq(4).all() and ev.n.eq(539).all()
    assert (ev.worst_group_accuracy <= ev.accuracy + 1e-12).all()
    assert (ev.worst_group_accuracy < ev.accuracy).any()   # at 99% the models lean on the colour


def test_cli_rejects_bad_strength(tmp_path):
    r = run_robstudy("run", "data=digits_spurious", "data.strength=1.5", "study.name=bad", *SMALL, cwd=tmp_path)
    assert r.returncode != 0
    assert "strength 1.5 is out of range; expected a number in [0, 1]" in r.stderr + r.stdout


@pytest.mark.slow
def test_cli_shapes_study(tmp_path):
    r = run_robstudy("run", "data=shapes", "data.n_train=300", "data.n_test=200", "data.size=16", "study.name=shapes", *SMALL, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ev = pd.read_parquet(tmp_path / "runs/shapes/tables/evals.parquet")
    models = pd.read_parquet(tmp_path / "runs/shapes/tables/models.parquet")
    assert ev.n.eq(200).all() and len(ev) == len(models) * 2 and len(models) >= 2   # models × (clean, noise)


def test_datasets_found_from_robstudy_data_alone():
    code = ("from robstudy.data import load_dataset\n"
            "d = load_dataset('digits_spurious', attribute='patch', strength=0.9)\n"
            "assert d.meta['groups_test'].shape == d.y_test.shape\n"
            "s = load_dataset('shapes', n_train=20, n_test=10, size=16)\n"
            "assert s.x_test.shape == (10, 3, 16, 16)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_groupdro_zoo_trains_on_the_datasets_groups(tmp_path):
    "A zoo with the groupdro recipe: the engine hands the data's training groups to GroupDRO; without groups, a clear error first."
    zoo = ["zoo.families=[logreg]", "zoo.recipes=[erm,groupdro]", "zoo.seeds=[0]"]
    r = run_robstudy("run", "data=digits_spurious", "data.strength=0.95", "study.name=dro", *SMALL, *zoo, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    models = pd.read_parquet(tmp_path / "runs/dro/tables/models.parquet")
    assert sorted(models.recipe.unique()) == ["erm", "groupdro"]
    r = run_robstudy("run", "study.name=nogroups", *SMALL, *zoo, cwd=tmp_path)   # plain digits have no groups
    assert r.returncode != 0 and "recipe 'groupdro' needs group labels" in r.stderr + r.stdout
    assert not list((tmp_path / "runs/nogroups").glob("models/*.safetensors"))   # nothing trained before the error
