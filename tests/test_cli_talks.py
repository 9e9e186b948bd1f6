"""The `robstudy` command talks like one: a mistake is one line on stderr naming the closest valid name and what is
allowed, with exit status 2, no traceback and nothing written; a bug still shows its traceback; `robstudy shifts` is
readable in 100 columns; help names robstudy; `--yes` lets a zoo past the large-zoo guard; a missing file is a mistake too."""
import re

import pandas as pd
import pytest

from conftest import run_robstudy
from robstudy import cli


def one_line_error(r):
    "The stderr of a finished `robstudy` that must have failed with one line and no traceback."
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    return r.stderr


def test_console_script_mistake_is_one_line(tmp_path):
    "The console script, as a shell runs it: one line on stderr, status 2, no traceback, nothing written."
    err = one_line_error(run_robstudy("run", "shifts.names=[gausian_noise]", "device=cpu", cwd=tmp_path))
    assert err.startswith("robstudy run: error: unknown shift 'gausian_noise'; expected one of ['brightness'"), err
    assert err.endswith("did you mean 'gaussian_noise'? (robstudy shifts describes each)\n"), err
    assert not any(tmp_path.iterdir()), "nothing may be written before the names are checked"


def test_bad_baseline_fails_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "zoo=tiny", "device=cpu", "study.baseline=\"family == 'mlp' and\""]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robstudy run: error: study.baseline: query") and "not a valid expression" in err, err
    assert not any(tmp_path.iterdir())


MISTAKES = [   # (command line, what the line names, the closest valid name)
    (["run", "-m", "zoo.seeds=[0],[1]", "zoo.families=[logreg],[mpl]"], "unknown model family 'mpl'", "mlp"),  # a sweep's 2nd job
    (["study", "report.notebooks=[corelation]"], "unknown report 'corelation'", "correlation"),  # before the run trains
    (["run", "zoo.families=[cnx]"], "unknown model family 'cnx'", "cnn"),
    (["run", "zoo.recipes=[mixupp]"], "unknown recipe 'mixupp'", "mixup"),
    (["run", "data.name=digitz"], "unknown dataset 'digitz'", "digits"),
    (["run", "data=digitz"], "Available options in 'data'", "digits"),
    (["run", "study=digitz"], "Available options in 'study'", "digits"),
    (["run", "zoo=tyni"], "Available options in 'zoo'", "tiny"),
    (["run", "shifts=basik"], "Available options in 'shifts'", "basic"),
    (["run", "hydra/launcher=slurn"], "Available options in 'hydra/launcher'", "slurm"),
    (["run", "zoo.seed=[0,1]"], "unknown config key 'zoo.seed'", "zoo.seeds"),
    (["report", "repot.force=true"], "unknown config key 'repot'", "report"),
    (["run", "+zoo.seedz=[1]"], "unknown config key 'zoo.seedz'", "zoo.seeds"),
    (["run", "data=digits_spurious", "data.strenght=0.9"], "unknown config key 'data.strenght'", "data.strength"),
    (["run", "study.transform=logt"], "unknown transform 'logt'", "logit"),
    (["report", "report.notebooks=[effective_robustnes]"], "unknown report 'effective_robustnes'", "effective_robustness"),
    (["study", "+report.parameters.adversarail.x=1"], "report.parameters names report(s) ['adversarail']", "adversarial"),
    (["run", "--cfg", "job", "shifts=basik"], "Available options in 'shifts'", "basic"),
]


@pytest.mark.parametrize("args,bad,best", MISTAKES)
def test_mistakes_name_the_closest_valid_name(tmp_path, monkeypatch, capsys, args, bad, best):
    monkeypatch.chdir(tmp_path)
    assert cli.main([*args, "device=cpu"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"robstudy {args[0]}: error: ") and err.count("\n") == 1 and bad in err, err
    assert f"did you mean '{best}'?" in err, err
    assert not any(tmp_path.iterdir())


def test_wrong_types_and_syntax_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for args, expect in [(["report.timeout=abc"], "report.timeout=abc: Value 'abc'"),
                         (["zoo.lr=[1,"], "cannot read the override 'zoo.lr=[1,'"),
                         (["data.name=fashion_mnist"], "unknown option 'data.test_fraction' for the dataset 'fashion_mnist'"),
                         (["device=gpu"], "unknown device 'gpu'")]:
        assert cli.main(["run", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("robstudy run: error: ") and err.count("\n") == 1 and expect in err, err
    assert not any(tmp_path.iterdir())


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch, capsys):
    "Only mistakes are turned into one line: any other error leaves `main` (the console script prints its traceback)."
    monkeypatch.chdir(tmp_path)
    def broken(cfg): raise ZeroDivisionError("a bug in robstudy")
    monkeypatch.setitem(cli.COMMANDS, "run", broken)
    with pytest.raises(ZeroDivisionError): cli.main(["run", "device=cpu"])
    def mistaken(cfg): raise ValueError("unknown widget 'x'; expected one of ['y']")
    monkeypatch.setitem(cli.COMMANDS, "run", mistaken)
    assert cli.main(["run", "device=cpu"]) == 2 and "robstudy run: error: unknown widget 'x'" in capsys.readouterr().err
    for var in ("ROBSTUDY_DEBUG", "HYDRA_FULL_ERROR"):   # asked for: a mistake's traceback too
        with monkeypatch.context() as m:
            m.setenv(var, "1")
            with pytest.raises(ValueError): cli.main(["run", "device=cpu"])
    def buggy(*a, **k): return None + 1
    monkeypatch.setattr("robstudy.fit_cli.fit_tables", buggy)   # a bug inside `robstudy fit`: a TypeError that lists nothing
    (tmp_path / "t.csv").write_text("model,val,v2\na,70.0,60.0\nb,80.0,71.0\nc,75.0,64.0\n")
    with pytest.raises(TypeError):
        cli.main(["fit", str(tmp_path / "t.csv"), "--format", "testbed", "--opt", "scale=percent", "--x", "val", "--y", "v2"])


LARGE = ["zoo.widths=[8,16,32,64,128]", "zoo.seeds=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]", "device=cpu"]


@pytest.mark.parametrize("yes", [["--yes"], ["zoo.confirm_large=true"]])
def test_yes_lets_a_large_zoo_through(tmp_path, monkeypatch, capsys, yes):
    "Over robstudy.zoo.LARGE_ZOO models: refused in one line naming the way through; `--yes` (anywhere) or the override is it."
    from robstudy.zoo import LARGE_ZOO, zoo_grid
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", *LARGE]) == 2
    err = capsys.readouterr().err
    assert "is more than 1,000" in err and "zoo.confirm_large=true" in err and "--yes" in err and err.count("\n") == 1, err
    given = []
    monkeypatch.setitem(cli.COMMANDS, "run", given.append)   # what `run` would train, without training it
    assert cli.main(["run", LARGE[0], *yes, *LARGE[1:]]) == 0, capsys.readouterr().err
    assert given[0]["zoo"]["confirm_large"] is True and len(zoo_grid(given[0]["zoo"])) > LARGE_ZOO
    assert cli.main(["run", "--help"]) == 0 and "--yes" in capsys.readouterr().out


def test_missing_files_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "device=cpu"]) == 2   # no study run here yet
    err = capsys.readouterr().err
    assert err == "robstudy report: error: no results for study 'digits' in runs/digits: run `robstudy run study=digits` first\n", err
    assert cli.main(["fit", "nothere.csv", "--format", "testbed", "--x", "val", "--y", "v2"]) == 2
    assert capsys.readouterr().err == "robstudy fit: error: TABLE nothere.csv: no such file or folder\n"
    assert not any(tmp_path.iterdir())


def test_fit_mistakes_name_the_closest_valid_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_text("model,val,imagenetv2\na,70.0,60.0\nb,80.0,71.0\nc,75.0,64.0\n")
    for args, bad, best in [(["--format", "testbd"], "unknown format 'testbd' (--format)", "testbed"),
                            (["--format", "testbed", "--opt", "scale=percnt"], "scale 'percnt' is not one of", "percent"),
                            (["--format", "testbed", "--opt", "scale=percent", "--y", "imagenet_v2"], "unknown setting 'imagenet_v2' (--y)",
                             "imagenetv2")]:
        argv = ["fit", "t.csv", "--x", "val", *args] + ([] if "--y" in args else ["--y", "imagenetv2"])
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("robstudy fit: error: ") and bad in err and err.endswith(f"did you mean '{best}'?\n"), err
        assert "format=" not in err and "Traceback" not in err, err


def test_python_keywords_are_spelt_for_the_shell(shared_study, tmp_path, capsys):
    "The fits' advice `missing='drop'`, met for real by `robstudy fit`, reads `--missing drop` there, which works."
    from robstudy.fits import fit_tables
    from robstudy.summary import setting_ids
    from robstudy.tables import Tables
    t = Tables.load(shared_study["dir"] / "runs/digits/tables")
    clean, ood = setting_ids(t, shift="clean")[0], setting_ids(t, shift="rotation")[0]
    gap = Tables(t.models, t.settings, t.evals.drop(t.evals.index[t.evals.setting_id.eq(ood)][:1]), t.meta)
    with pytest.raises(ValueError) as e: fit_tables(gap, clean, ood)
    assert "missing='drop'" in str(e.value)   # the library speaks Python
    gap.save(tmp_path / "tables")
    assert cli.main(["fit", str(tmp_path / "tables"), "--x", clean, "--y", ood]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robstudy fit: error: ") and err.endswith("or pass --missing drop\n") and "'drop'" not in err, err
    assert cli.main(["fit", str(tmp_path / "tables"), "--x", clean, "--y", ood, "--missing", "drop"]) == 0


def test_reports_print_no_kernel_warning(shared_study):
    "The shared study's `robstudy report` (a subprocess, as a user runs it) printed its records and nothing from the kernels."
    out, err = shared_study["report"]["stdout"], shared_study["report"]["stderr"]
    assert shared_study["report"]["returncode"] == 0 and "index   reports/index.html" in out, (out, err)
    for text in (out, err): assert "IPKernelApp" not in text and "without encryption" not in text, text


def test_shifts_listing_reads_in_100_columns(capsys):
    assert cli.main(["shifts"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(map(len, lines)) <= 100, max(lines, key=len)
    for section in ("Image shifts", "Attacks", "Label shift", "Text perturbations"):
        assert any(l.startswith(section) for l in lines), section
    assert re.search(r"^  gaussian_noise +sigma 0\.08 0\.12 0\.18 0\.26 0\.38$", out, re.M), out
    assert re.search(r"^  pgd +PGD", out, re.M) and "keyboard_typo" in out and "label_shift_indices" in out


def test_shifts_help_and_details(capsys):
    with pytest.raises(SystemExit) as e: cli.main(["shifts", "--help"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("usage: robstudy shifts")
    assert cli.main(["shifts", "frost"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("frost") and "ImageNet-C" in out and "(0.6, 0.75)" in out and max(map(len, out.splitlines())) <= 100
    assert cli.main(["shifts", "gausian_noise"]) == 2
    assert "did you mean 'gaussian_noise'?" in capsys.readouterr().err


def test_command_help_names_robstudy(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: robstudy COMMAND") and "Hydra" not in out and "--yes" in out, out
    assert max(map(len, out.splitlines())) <= 100, max(out.splitlines(), key=len)
    for command in ("run", "report", "study"):
        assert cli.main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: robstudy {command}") and "Hydra" not in out and "ROBSTUDY_DEBUG=1" in out, out
        assert max(map(len, out.splitlines())) <= 100
        for name in ("digits_spurious", "tiny", "slurm", "zoo.seeds", "report.notebooks", "study.baseline"): assert name in out


def test_fit_takes_a_studys_setting_names(shared_study, capsys):
    "A study's settings are hashes; `robstudy fit` also takes their names (`clean`, `rotation@3`): the same fit as by id."
    import json
    from robstudy.tables import Tables
    study = shared_study["dir"] / "runs/digits"
    s = Tables.load(study / "tables").settings
    clean = s.setting_id[s["shift"].eq("clean")].item()
    rot3 = s.setting_id[s["shift"].eq("rotation") & s.severity.eq(3)].item()
    fits = []
    for x, y in [(clean, rot3), ("clean", "rotation@3")]:
        assert cli.main(["fit", str(study), "--x", x, "--y", y, "--json"]) == 0
        fits.append(json.loads(capsys.readouterr().out))
    assert fits[0] == fits[1] and fits[1]["x"] == clean and fits[1]["y"] == [rot3]
    assert cli.main(["fit", str(study), "--x", "clean", "--y", "rotaton@3"]) == 2
    err = capsys.readouterr().err
    assert "unknown setting 'rotaton@3' (--y)" in err and "'gaussian_noise@1'" in err and err.endswith("did you mean 'rotation@3'?\n"), err


def test_setting_names_of_several_test_sets():
    "Bare names on the ID test set, `DATASET:` before the others' and a paired ID setting's; ids that are names stay as they are."
    from robstudy.fit_cli import setting_names
    rows = [("a0", "digits", "clean", 0, "id"), ("a1", "digits", "rotation", 3, "ood"), ("a2", "mnist", "clean", 0, "ood"),
            ("a3", "mnist", "rotation", 3, "ood"), ("a4", "digits-on-mnist-classes", "clean", 0, "id")]
    s = pd.DataFrame([(f"{sid:0>12}", *r) for sid, *r in rows], columns=["setting_id", "dataset", "shift", "severity", "role"])
    assert setting_names(s) == {"clean": "0000000000a0", "rotation@3": "0000000000a1", "mnist:clean": "0000000000a2",
                                "mnist:rotation@3": "0000000000a3", "digits-on-mnist-classes:clean": "0000000000a4"}
    assert setting_names(s.assign(setting_id=["val", "r", "v2", "v2r", "valsub"])) == {}   # published tables: their ids are names
