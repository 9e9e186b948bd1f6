"""A baseline query is data, not code (issue 16, item 2): it is parsed by a restricted grammar and evaluated by
robstudy over the table, never by `eval` or `DataFrame.query`. Hostile queries are refused before anything runs;
legitimate ones select exactly what pandas selects."""
import numpy as np
import pandas as pd
import pytest

from robstudy.fit_cli import fit_command
from robstudy.fits import fit_tables, select_models
from robstudy.tables import Tables

RULE = "nat_model_type == 'STANDARD' and val >= 0.55 and not model_id.str.contains('subsample|aws|batch64')"


def _tables(k=9):
    mids = [f"m{i}" for i in range(k)]
    x = np.linspace(0.55, 0.9, k); y = x - 0.1 + 0.01 * np.sin(np.arange(k))
    models = pd.DataFrame({"model_id": mids, "family": ["cnn", "vit", "mlp"] * (k // 3)})
    settings = pd.DataFrame({"setting_id": ["val", "v2"], "dataset": ["a", "b"], "shift": ["clean", "natural"],
                             "severity": [0.0, np.nan], "role": ["id", "ood"]})
    ev = pd.concat([pd.DataFrame({"model_id": mids, "setting_id": s, "n": 1000, "correct": np.round(a * 1000).astype(int)})
                    for s, a in (("val", x), ("v2", y))], ignore_index=True)
    ev["accuracy"] = ev.correct / ev.n
    return Tables(models, settings, ev.astype({"n": "Int64", "correct": "Int64"})).validate()


def _frame():
    "Model metadata and accuracies of every kind a baseline meets: text with gaps, numbers, booleans, odd names."
    return pd.DataFrame({
        "model_id": ["resnet50", "resnet50_subsample", "vit_b_aws", "Clip_L", "m.1", "effnet", "batch64_r18", "dino"],
        "family": ["cnn", "cnn", "vit", "vit", "mlp", "cnn", "cnn", "vit"],
        "nat_model_type": ["STANDARD", "STANDARD", "STANDARD", "MORE_DATA", "STANDARD", "ROBUST_INTV", "STANDARD", "STANDARD"],
        "params": [25e6, 25e6, 86e6, 300e6, 1e5, 5e6, 11e6, 86e6],
        "is_robust": pd.array([False, False, False, True, False, True, False, False], dtype="boolean"),
        "tag": ["x", None, "y", "x", None, "z", "x", "y"],
        "val": [0.76, 0.6, 0.81, 0.75, 0.4, 0.77, 0.5, 0.8],
        "v2": [0.63, 0.5, 0.7, 0.7, 0.3, 0.65, 0.4, 0.69],
        "imagenet-r": [0.36, 0.2, 0.5, 0.77, 0.1, 0.45, 0.2, 0.4],
    })


def test_the_pandas_at_attack_runs_nothing(tmp_path, monkeypatch, capsys):
    "The reported attack: `@` reached any module through pandas' python engine, here `os.system`."
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    attack = f"@pd.io.common.os.system('touch {marker}') == 0"
    t = _tables(); t.save(tmp_path / "tables")
    with pytest.raises(ValueError, match="A query may use"):
        fit_tables(t, "val", "v2", baseline=attack)
    assert not marker.exists()
    assert fit_command([str(tmp_path / "tables"), "--x", "val", "--y", "v2", "--baseline", attack]) == 2
    assert not marker.exists()
    assert "'@'" in capsys.readouterr().err      # the message names the offending part


HOSTILE = [  # (query, a piece of it the message must name)
    ("@pd.io.common.os.system('touch {m}') == 0", "@"),
    ("__import__('os').system('touch {m}') == 0", "__import__"),
    ("model_id.__class__.__mro__[1].__subclasses__() == 1", "__class__"),
    ("model_id.str.__class__ == 'x'", "__class__"),
    ("(lambda: __import__('os').system('touch {m}'))() == 0", "lambda"),
    ("open('{m}', 'w').write('x') == 1", "open"),
    ("eval(\"__import__('os').system('touch {m}')\") == 0", "eval"),
    ("model_id.apply(print) == 0", "apply"),
    ("model_id.str.replace('a', 'b') == 'b'", "replace"),
    ("model_id.str.contains(family)", "family"),              # the pattern must be a literal
    ("model_id.str.contains('a', na=True)", "na"),            # only the keywords regex= and case=
    ("model_id.str.contains(*['a'])", "*"),
    ("model_id.str.contains('a').any()", "any"),
    ("model_id[0] == 'r'", "model_id[0]"),
    ("f'{{model_id}}' == 'resnet50'", "f'"),
    ("(val := 1) == 1", ":="),
    ("[c for c in model_id] == 1", "for"),
    ("val ** 10 ** 10 > 1", "**"),
    ("val + 0.1 > 0.8", "+"),
    ("family is None", "is"),
    ("family == None", "None"),
    ("family if val else tag", "if"),
    ("{{'a': 1}} == family", "{"),
    ("b'cnn' == family", "b'cnn'"),
    ("val == 1j", "1j"),
    ("getattr(family, 'str') == 1", "getattr"),
    ("family == 'cnn'; import os", ";"),
    ("'cnn' == 'cnn'", "column"),                              # a comparison must involve a column
    ("family", "family"),                                      # a text column is not a condition
    ("__builtins__ == 1", "__builtins__"),
    ("family in family", "in"),
    ("('cnn', family) == 1", "family"),
]


@pytest.mark.parametrize("query,part", HOSTILE, ids=[q for q, _ in HOSTILE])
def test_hostile_queries_are_refused_before_anything_runs(tmp_path, query, part):
    marker = tmp_path / "PWNED"
    q = query.format(m=marker)
    with pytest.raises(ValueError) as e:
        select_models(_frame(), q)
    msg = str(e.value)
    rest = msg.replace(repr(q), "")                          # the part must be named, not only echoed in the query
    assert "A query may use" in msg and part in rest, msg
    assert not marker.exists()


def test_huge_or_deep_queries_are_refused():
    with pytest.raises(ValueError, match="A query may use"):
        select_models(_frame(), "(" * 500 + "val > 0" + ")" * 500)
    with pytest.raises(ValueError, match="characters"):
        select_models(_frame(), " or ".join(["val > 0.5"] * 2000))


LEGIT = [
    RULE,
    "family == 'cnn'",
    "family != 'cnn' and params > 1e6",
    "not (family == 'cnn' or val < 0.7)",
    "family in ['cnn', 'vit']",
    "family not in ('cnn',)",
    "params in [25e6, 1e5]",
    "model_id.str.contains('sub|aws')",
    "not model_id.str.contains('subsample') and not model_id.str.contains('aws')",
    "model_id.str.startswith('res')",
    "model_id.str.endswith('_L')",
    "model_id.str.contains('clip', case=False)",
    "model_id.str.contains('.', regex=False)",
    "0.6 < val <= 0.9",
    "val > v2",
    "`imagenet-r` >= 0.4",
    "is_robust",
    "not is_robust",
    "is_robust == True",
    "-1 < params",
    "params > -1e6",
    "tag.isna()",
    "tag.notna() and val > 0.7",
    "tag == 'x'",
    "tag != 'x'",
    "'x' == tag",
    "0.5 < val",
    "family == \"vit\"",
    "(((family == 'vit')))",
]


@pytest.mark.parametrize("query", LEGIT)
def test_legitimate_queries_select_what_pandas_selects(query):
    f = _frame()
    want = f.index.isin(f.query(query, engine="python").index)   # pandas as the oracle, on a trusted query
    got = np.asarray(select_models(f, query))
    assert got.dtype == bool and (got == want).all(), (query, f.model_id[got].tolist(), f.model_id[want].tolist())


def test_the_testbed_rule_on_the_shipped_testbed():
    from robstudy.published import load_published
    t = load_published("imagenet_testbed")
    f = t.models.merge(t.wide().reset_index(), on="model_id", how="left")
    got = np.asarray(select_models(f, RULE))
    want = f.index.isin(f.query(RULE, engine="python").index)
    assert got.sum() > 50 and (got == want).all()


def test_missing_values_never_satisfy_a_string_method():
    "`contains`, `startswith`, `endswith` on a missing value are unknown: the row is not selected, negated or not."
    f = _frame()
    gap = f.tag.isna().to_numpy()
    for q in ("tag.str.contains('x')", "not tag.str.contains('x')", "tag.str.startswith('y')", "not tag.str.endswith('z')"):
        assert not np.asarray(select_models(f, q))[gap].any(), q


def test_errors_name_the_columns_and_the_problem():
    f = _frame()
    with pytest.raises(ValueError, match=r"names no column 'famly'.*'family'"):
        select_models(f, "famly == 'cnn'")
    with pytest.raises(ValueError, match="`imagenet-a`"):
        select_models(f, "`imagenet-a` > 0.5")
    with pytest.raises(ValueError, match="regular expression"):
        select_models(f, "model_id.str.contains('(')")
    with pytest.raises(ValueError, match="params"):
        select_models(f, "params.str.contains('1')")          # .str on a numeric column
    with pytest.raises(ValueError, match="non-empty string"):
        select_models(f, "  ")
    assert np.asarray(select_models(f, None)).all()
