"""The `robstudy` command talks like one: a mistake is one line on stderr naming the closest valid name and what is
allowed, with exit status 2, no traceback and nothing written; a bug still shows its traceback; `robstudy shifts` is
readable in 100 columns; help names robstudy."""
import re

import pytest

from conftest import run_robstudy
from robstudy import cli


def one_line_error(r):
    "The stderr of a finished `robstudy` that must have failed with one line and no traceback."
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    return r.stderr


@pytest.mark.parametrize("args,bad,best", [
    (["run", "shifts.names=[gausian_noise]"], "unknown shift 'gausian_noise'", "gaussian_noise"),   # a registry KeyError
    (["run", "-m", "zoo.seeds=[0],[1]", "zoo.families=[logreg],[mpl]"], "unknown model family 'mpl'", "mlp"),  # a sweep's job
    (["study", "report.notebooks=[corelation]"], "unknown report 'corelation'", "correlation"),  # before the run trains
])
def test_console_script_mistakes_are_one_line(tmp_path, args, bad, best):
    err = one_line_error(run_robstudy(*args, "device=cpu", cwd=tmp_path))
    assert err.startswith(f"robstudy {args[0]}: error: ") and bad in err and f"did you mean '{best}'?" in err, err
    assert not any(tmp_path.iterdir()), "nothing may be written before the names are checked"


def test_bad_baseline_fails_before_training(tmp_path):
    err = one_line_error(run_robstudy("run", "zoo=tiny", "device=cpu", "study.baseline=\"family == 'mlp' and\"", cwd=tmp_path))
    assert err.startswith("robstudy run: error: study.baseline: query") and "not a valid expression" in err, err
    assert not any(tmp_path.iterdir())


MISTAKES = [   # (command line, what the line names, the closest valid name)
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
    monkeypatch.setenv("ROBSTUDY_TRACEBACK", "1")
    with pytest.raises(ValueError): cli.main(["run", "device=cpu"])


def test_python_keywords_are_spelt_for_the_shell(shared_study):
    "The fits' advice `missing='drop'`, met for real, reads `--missing drop` under `robstudy fit`."
    from robstudy.fits import fit_tables
    from robstudy.summary import setting_ids
    from robstudy.tables import Tables
    t = Tables.load(shared_study["dir"] / "runs/digits/tables")
    ood = setting_ids(t, shift="rotation")[0]
    gap = Tables(t.models, t.settings, t.evals.drop(t.evals.index[t.evals.setting_id.eq(ood)][:1]), t.meta)
    with pytest.raises(ValueError) as e: fit_tables(gap, setting_ids(t, shift="clean")[0], ood)
    assert "missing='drop'" in str(e.value)
    line = cli.user_error_line(e.value, "fit")
    assert "--missing drop" in line and "missing='drop'" not in line, line


def test_shifts_listing_reads_in_100_columns(tmp_path):
    r = run_robstudy("shifts", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(map(len, lines)) <= 100, max(lines, key=len)
    for section in ("Image shifts", "Attacks", "Label shift", "Text perturbations"):
        assert any(l.startswith(section) for l in lines), section
    assert re.search(r"^  gaussian_noise +sigma 0\.08 0\.12 0\.18 0\.26 0\.38$", r.stdout, re.M), r.stdout
    assert re.search(r"^  pgd +PGD", r.stdout, re.M) and "keyboard_typo" in r.stdout and "label_shift_indices" in r.stdout


def test_shifts_help_and_details(capsys):
    with pytest.raises(SystemExit) as e: cli.main(["shifts", "--help"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("usage: robstudy shifts")
    assert cli.main(["shifts", "frost"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("frost") and "ImageNet-C" in out and "(0.6, 0.75)" in out and max(map(len, out.splitlines())) <= 100
    assert cli.main(["shifts", "gausian_noise"]) == 2
    assert "did you mean 'gaussian_noise'?" in capsys.readouterr().err


def test_command_help_names_robstudy(capsys):
    for command in ("run", "report", "study"):
        assert cli.main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: robstudy {command}") and "Hydra" not in out, out
        assert max(map(len, out.splitlines())) <= 100
        for name in ("digits_spurious", "tiny", "slurm", "zoo.seeds", "report.notebooks", "study.baseline"): assert name in out
