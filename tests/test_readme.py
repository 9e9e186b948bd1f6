"""The README runs as written.

Every ```python block of README.md runs, in the README's order, in one fresh Python process, in a folder that holds a
copy of the suite's shared trained study (runs/digits/, reports/) and, beside it, each folder of the published
reference results a reader would have downloaded (imagenet_testbed/, timm/, ...: $ROBSTUDY_REFERENCE or
../shared/reference-results). A block that writes into a folder with `ingest_into` runs twice in a row, as a notebook
cell run again does. A block that fails is named by its number and line, with its first lines and the error.
Without the reference results, a block that fails only because a file is missing is reported as skipped, and the blocks
after it still run.

The README's transcripts of mistakes (`$ robstudy ...` then the error line) are what the command prints.

Every `robstudy` command line the README shows is also checked without running it: `fit`, `course` and `shifts`
lines against their argument parsers, `run`, `report` and `study` lines by composing and checking their configs (every
job of a sweep) as the command would before doing anything.
"""
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import warnings

import pytest

from conftest import ROOT, copy_study, reference_dir

README = ROOT / "README.md"

# runs the blocks given as JSON [[line, code], ...] in order in one namespace; prints one JSON record per block
DRIVER = r"""
import json, sys, traceback
blocks, missing_ok = json.load(open(sys.argv[1])), sys.argv[2] == "1"
ns = {"__name__": "__main__"}
for i, (line, code) in enumerate(blocks, 1):
    rec = {"block": i, "line": line, "status": "ok"}
    try:
        exec(compile(code, f"README.md block {i} (line {line})", "exec"), ns)
    except FileNotFoundError as e:
        rec.update(status="skipped" if missing_ok else "failed", error=traceback.format_exc(limit=-4))
    except BaseException:
        rec.update(status="failed", error=traceback.format_exc(limit=-4))
    print("README-BLOCK " + json.dumps(rec), flush=True)
    if rec["status"] == "failed": sys.exit(1)
"""


def fenced_blocks(text: str, lang: str) -> list:
    "The fenced code blocks of `lang` in markdown `text`, as (line of the opening fence, dedented code)."
    blocks, cur, start, kind = [], None, 0, None
    for i, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", line)
        if cur is None:
            if m: cur, start, kind, fence = [], i, m.group(2), m.group(1)
        elif m and line.strip() == fence:
            if kind == lang: blocks.append((start, textwrap.dedent("\n".join(cur))))
            cur = None
        else:
            cur.append(line)
    return blocks


def test_fenced_blocks_are_found():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n  ```python\n  y = 2\n  ```\n"
    assert fenced_blocks(text, "python") == [(2, "x = 1"), (8, "y = 2")]
    readme = README.read_text()
    assert len(fenced_blocks(readme, "python")) == readme.count("```python") > 0


@pytest.mark.slow
def test_readme_python_blocks_run(shared_study, tmp_path):
    readme = fenced_blocks(README.read_text(), "python")
    blocks = [b for b in readme for _ in range(2 if "ingest_into(" in b[1] else 1)]   # run again: it must still work
    assert len(blocks) > len(readme), "the README shows no ingest_into block"
    work = copy_study(shared_study, tmp_path / "readme")
    ref = reference_dir()
    if ref is not None:
        for d in ref.iterdir():
            if d.is_dir() and not (work / d.name).exists(): (work / d.name).symlink_to(d, target_is_directory=True)
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path / "blocks.json"), "0" if ref else "1"], cwd=work,
                       capture_output=True, text=True, timeout=600, env=env)
    recs = [json.loads(l.removeprefix("README-BLOCK ")) for l in r.stdout.splitlines() if l.startswith("README-BLOCK ")]
    for rec in recs:
        if rec["status"] == "failed":
            code = blocks[rec["block"] - 1][1]
            again = " (run a second time)" if rec["block"] > 1 and blocks[rec["block"] - 2] == blocks[rec["block"] - 1] else ""
            pytest.fail(f"README python block at line {rec['line']}{again} fails as written:\n"
                        + textwrap.indent("\n".join(code.splitlines()[:4]), "    ") + "\n    ...\n" + rec["error"])
    assert r.returncode == 0 and len(recs) == len(blocks), f"the blocks did not all run:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    skipped = [f"block {x['block']} (line {x['line']})" for x in recs if x["status"] == "skipped"]
    if skipped: warnings.warn(f"README blocks that read the absent reference results were skipped: {skipped}")


def code_lines(text: str) -> list:
    "The README's shell code: lines of fenced blocks (not python), of indented code, and inline code spans."
    text = re.sub(r"\\\n\s*", " ", text)       # a command continued with a backslash: one line
    out, prose, fence = [], [], None
    for line in text.splitlines():
        m = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", line)
        if fence is None and m: fence = (m.group(1), m.group(2)); continue
        if fence is not None:
            if line.strip() == fence[0]: fence = None
            elif fence[1] != "python": out.append(line.strip())
        elif line.startswith("    "): out.append(line.strip())
        else: prose.append(line)
    return out + [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", "\n".join(prose))]


def command_lines(text: str, command: str) -> list:
    "The arguments of every `robstudy COMMAND ...` the README shows as code (not a `$ ` transcript, not a synopsis)."
    out = []
    for line in code_lines(text):
        m = re.match(rf"robstudy {command}(?=\s|$)(.*)", line)
        if not m: continue
        try: toks = shlex.split(m.group(1), comments=True)
        except ValueError: toks = None
        if not toks or any(t.startswith("[") or "<" in t or t in ("...", "…") for t in toks):
            continue   # a mention, a synopsis (`[--json]`, `[overrides]`) or a placeholder (`<partition>`): not a command
        out.append(toks)
    return out


@pytest.mark.parametrize("command", ["fit", "course", "shifts"])
def test_readme_command_lines_parse(command):
    from robstudy import cli
    parser = {"fit": lambda: __import__("robstudy.fit_cli", fromlist=["fit_parser"]).fit_parser(),
              "course": cli.course_parser, "shifts": cli.shifts_parser}[command]()
    lines = command_lines(README.read_text(), command)
    bad = []
    for toks in lines:
        try: parser.parse_args(toks)
        except SystemExit: bad.append(f"robstudy {command} {shlex.join(toks)}")
    assert not bad, f"README shows `robstudy {command}` lines its parser rejects: {bad}"
    if command != "shifts": assert lines, f"no `robstudy {command}` example found in the README"


def test_readme_study_lines_compose_and_check():
    "Each `robstudy run|report|study` line the README shows composes (every sweep job) and passes the command's checks."
    from robstudy import cli
    from robstudy.config import compose
    bad, n = [], 0
    for command in ("run", "report", "study"):
        for toks in command_lines(README.read_text(), command):
            overrides = [t for t in toks if not t.startswith("-") and t != "job"] + (["zoo.confirm_large=true"] if "--yes" in toks else [])
            jobs = cli.sweep_jobs(overrides) if ("-m" in toks or "--multirun" in toks) else [overrides]
            for job in jobs:
                n += 1
                try: cli.check_config({**compose(job), "device": "cpu"}, command)   # the README's device=cuda lines too
                except Exception as e: bad.append(cli.user_error_line(e, command, job))
    assert n >= 10, f"only {n} study command lines found in the README"
    assert not bad, "\n".join(bad)


def transcripts(text: str) -> list:
    "The README's `$ robstudy ...` lines, each with the line shown after it."
    lines = [l for _, code in fenced_blocks(text, "") for l in code.splitlines()]
    return [(shlex.split(a[2:]), b) for a, b in zip(lines, lines[1:]) if a.startswith("$ robstudy ")]


def test_readme_transcripts_are_what_robstudy_prints(tmp_path, monkeypatch, capsys):
    "Each transcript's error line is the command's (a `...` in it stands for names left out); a `fit` reads the testbed."
    from robstudy import cli
    shown = transcripts(README.read_text())
    assert len(shown) >= 3
    for argv, line in shown:
        if argv[1] == "fit":
            if reference_dir() is None: continue
            monkeypatch.chdir(reference_dir() / "imagenet_testbed")
        else: monkeypatch.chdir(tmp_path)
        assert cli.main(argv[1:]) == 2, argv
        err = capsys.readouterr().err.rstrip("\n")
        parts = [p.strip(" ,") for p in line.split("...")]
        assert err.startswith(parts[0]) and err.endswith(parts[-1]), (line, err)
        at = 0
        for p in parts:
            at = err.find(p, at); assert at >= 0, (p, err); at += len(p)
