"""Math renders offline (LaTeX to MathML at render time) in reports, lessons and the docs site; the docs site opens from
file:// with no network; a report's kernel starts without ipykernel's unencrypted-TCP warning. The browser checks use
headless Chromium (tests/test_browser.py's `Page`) and skip when it is absent."""
import urllib.request
import warnings
from pathlib import Path

import nbformat
import pytest

from robstudy.reports import build_docs, render_html, run_report

MATH = "# Probits\n\nThe probit $\\Phi^{-1}(p)$ of an accuracy, and the line\n\n$$\\hat y = a x + b$$\n\nfrom $5 to $6."


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def math_page(tmp_path):
    nb = _notebook(tmp_path / "math.ipynb", nbformat.v4.new_markdown_cell(MATH), nbformat.v4.new_code_cell("print(1)"))
    return render_html(nb, tmp_path / "math.html")


def test_math_is_mathml(math_page):
    page = math_page.read_text()
    assert page.count("<math") == 2 and 'display="block"' in page
    assert "$\\Phi" not in page and "$$" not in page and "from $5 to $6." in page   # money stays text
    assert "mathjax" not in page.lower()


def test_a_formula_that_fails_is_left_as_text(tmp_path):
    nb = _notebook(tmp_path / "bad.ipynb", nbformat.v4.new_markdown_cell("bad $x^$ and good $y$ and $\\text{<i>x</i>}$"))
    with pytest.warns(UserWarning) as caught:
        page = render_html(nb, tmp_path / "bad.html").read_text()
    assert {str(w.message).split(":")[0] for w in caught} == {"latex2mathml cannot convert 'x^'", "cannot convert '\\\\text{<i>x</i>}' to MathML"}
    assert "bad $x^$" in page and page.count("<math") == 1 and "&lt;i&gt;x&lt;/i&gt;" in page and "<i>x</i>" not in page


def test_report_kernel_starts_without_the_tcp_warning(tmp_path, capfd):
    "The kernel papermill starts writes to this process's stderr: ipykernel's warning would land there."
    _notebook(tmp_path / "tiny.ipynb", nbformat.v4.new_code_cell("figures_path = 'x.json'", metadata={"tags": ["parameters"]}),
              nbformat.v4.new_markdown_cell("$\\Phi$"), nbformat.v4.new_code_cell("print('ran')"))
    rec = run_report("tiny", {}, tmp_path / "out", nb_folder=tmp_path)
    err = capfd.readouterr().err
    assert rec["status"] == "ok", rec.get("error")
    assert "without encryption" not in err and "IPKernelApp" not in err, err
    assert "<math" in (tmp_path / "out" / "tiny.html").read_text()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "A docs site of two chapters, rendered as stored (no execution: the notebook 09_reports runs that)."
    d = tmp_path_factory.mktemp("docs")
    (d / "nbs").mkdir()
    _notebook(d / "nbs" / "00_probits.ipynb", nbformat.v4.new_markdown_cell(MATH.replace("# Probits", "# probits\n\n> Probit axes.")))
    _notebook(d / "nbs" / "01_lines.ipynb", nbformat.v4.new_markdown_cell("# lines\n\n> Lines on $\\Phi^{-1}$ axes."),
              nbformat.v4.new_code_cell("#| hide\nimport os"), nbformat.v4.new_code_cell("#| export\ndef line(): pass"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # every formula converts
        recs = build_docs(d / "nbs", d / "_docs", execute=False)
    assert [r["href"] for r in recs] == ["00_probits.html", "01_lines.html"]
    return d / "_docs"


def test_docs_site_has_no_network_links(site):
    import re
    for page in site.rglob("*.html"):
        text = page.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text), page
        assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", text), page
    lines = re.sub(r"<[^>]+>", "", (site / "01_lines.html").read_text())   # the page's text
    assert "def line(): pass" in lines and "import os" not in lines and "#|" not in lines
    index = (site / "index.html").read_text()
    assert index.index("00_probits.html") < index.index("01_lines.html") and "Lines on <math" in index


# ---- in a real browser ----------------------------------------------------------------------------------------------

try:
    from test_browser import CHROMIUM, Page
except pytest.skip.Exception:   # websocket-client missing: test_browser skips at import
    CHROMIUM, Page = None, None
browser = pytest.mark.skipif(CHROMIUM is None, reason="chromium (and websocket-client) are needed for the browser checks")

MATH_BOXES = """[...document.querySelectorAll('math')].map(m => { const r = m.getBoundingClientRect();
  return {w: r.width, h: r.height, display: m.getAttribute('display')}; })"""


@pytest.fixture
def page(tmp_path):
    p = Page(tmp_path / "profile")
    yield p
    p.close()


@browser
def test_math_renders_in_chromium(math_page, page, tmp_path):
    page.open(math_page.as_uri())
    text = page.eval("document.body.innerText")
    assert "$\\" not in text and "\\Phi" not in text and "Probits" in text
    boxes = page.eval(MATH_BOXES)
    assert len(boxes) == 2 and all(b["w"] > 0 and b["h"] > 0 for b in boxes), boxes
    # the display formula is laid out as MathML (a block of its own), not as inline text
    assert page.eval("getComputedStyle(document.querySelector('math[display=block]')).display") in ("block math", "block")


@browser
def test_docs_site_opens_offline(site, page):
    page.open((site / "index.html").as_uri())
    links = page.eval("[...document.querySelectorAll('a')].map(a => a.href)")
    assert len(links) == 2 and all(Path(urllib.request.url2pathname(u[len("file://"):])).exists() for u in links), links
    page.open(links[1])
    nav = page.eval("[...document.querySelectorAll('nav a')].map(a => [a.textContent, a.href])")
    assert [t for t, _ in nav] == ["robstudy docs", "probits", "lines"], nav
    assert all(Path(urllib.request.url2pathname(u[len("file://"):].split("#")[0])).exists() for _, u in nav), nav
    assert page.eval("document.querySelector('nav .rs-current').textContent") == "lines"
    assert all(b["w"] > 0 and b["h"] > 0 for b in page.eval(MATH_BOXES))
    left = [u for u in page.requests if not u.startswith(("file:", "data:", "about:"))]
    assert not left, f"requests that left the machine: {left}"
