"""Reports open offline in a real browser: headless Chromium (Debian's `chromium`) loads the index and a report,
every image loads, no request leaves the machine, and a screenshot is taken; every default report is read as a reader
reads it. Names that are markup: test_browser_hostile.py. Skips when chromium is absent."""
import base64
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
websocket = pytest.importorskip("websocket", reason="websocket-client is needed to drive chromium over the DevTools protocol")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--remote-debugging-port=0", "--window-size=1280,1600"]


class Page:
    "One Chromium tab driven over the DevTools protocol; records every network request the page makes."

    def __init__(self, profile: Path):
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip(): break
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.n, self.requests, self.events = 0, [], []
        self.call("Network.enable"); self.call("Page.enable")

    def call(self, method, **params):
        self.n += 1; me = self.n
        self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == me:
                assert "error" not in msg, msg
                return msg["result"]
            self._event(msg)

    def _event(self, msg):
        self.events.append(msg.get("method"))
        if msg.get("method") == "Network.requestWillBeSent": self.requests.append(msg["params"]["request"]["url"])

    def open(self, url):
        self.events.clear()
        self.call("Page.navigate", url=url)
        t0 = time.time()
        while "Page.loadEventFired" not in self.events and time.time() - t0 < 60:
            self._event(json.loads(self.ws.recv()))
        assert "Page.loadEventFired" in self.events, f"{url} did not finish loading"

    def eval(self, js):
        return self.call("Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True)["result"]["value"]

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        Path(path).write_bytes(base64.b64decode(data)); return Path(path)

    def close(self):
        try: self.ws.close()
        finally:
            self.proc.terminate()
            try: self.proc.wait(10)
            except subprocess.TimeoutExpired: self.proc.kill()


IMAGES = """new Promise(done => { const imgs = [...document.images];
  Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })))
    .then(() => done(imgs.map(i => ({src: i.src.slice(0, 30), w: i.naturalWidth, h: i.naturalHeight})))); })"""


@pytest.fixture
def reports(shared_study):
    "The shared study's rendered reports (read only)."
    assert shared_study["report"]["returncode"] == 0, shared_study["report"]["stderr"]
    return shared_study["dir"] / "reports"


@pytest.fixture
def page(tmp_path):
    p = Page(tmp_path / "profile")
    yield p
    p.close()


def test_report_opens_offline(reports, page, tmp_path):
    html = reports / "digits" / "effective_robustness.html"
    page.open(html.as_uri())
    imgs = page.eval(IMAGES)
    assert all(i["w"] > 0 and i["h"] > 0 for i in imgs), f"images that did not load: {[i for i in imgs if not i['w']]}"
    assert page.eval("document.querySelectorAll('svg.rs-svg').length") >= 3, "the figures are inline SVG"
    assert "Effective robustness" in page.eval("document.body.innerText")
    # robstudy's own script runs under the page's CSP: hovering a point shows its model, a header click sorts
    tip = page.eval("""(() => { const g = document.querySelector('.rs-point'); const r = g.getBoundingClientRect();
      g.dispatchEvent(new MouseEvent('mouseover', {bubbles: true, clientX: r.x + 1, clientY: r.y + 1}));
      const t = document.querySelector('.rs-tip'); return t ? [t.textContent, getComputedStyle(t).display] : null; })()""")
    assert tip and tip[1] == "block" and "ER" in tip[0] and "ID" in tip[0], tip
    sort = page.eval("""(() => { const b = document.querySelector('table.rs-sortable th button'); b.click();
      return b.closest('th').getAttribute('aria-sort'); })()""")
    assert sort == "ascending", sort
    shot = page.screenshot(tmp_path / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    left = [u for u in page.requests if not u.startswith(("file:", "data:", "about:"))]
    assert not left, f"requests that left the machine: {left}"


READING = """(() => { const text = document.body.innerText;
  const maths = [...document.querySelectorAll('math')].map(m => { const r = m.getBoundingClientRect(); return [r.width, r.height]; });
  const streams = document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stdout"], [data-mime-type="application/vnd.jupyter.stderr"]');
  return {text, maths, streams: [...streams].map(s => s.innerText.slice(0, 80))}; })()"""


def check_as_read(page, html: Path, shot: Path, math: bool | None = None) -> dict:
    """Open `html` as a reader does and check what they see: images load, formulas render as MathML (no raw TeX left),
    no machine paths, no stray printed lines, nothing fetched from the network; a screenshot is taken. Returns what was read."""
    page.open(html.as_uri())
    imgs = page.eval(IMAGES)
    assert all(i["w"] > 0 and i["h"] > 0 for i in imgs), f"{html.name}: images that did not load: {[i for i in imgs if not i['w']]}"
    seen = page.eval(READING)
    text = seen["text"]
    tex = re.findall(r".{0,30}(?:\$|\\[A-Za-z]+\b).{0,30}", text)
    assert not tex, f"{html.name}: raw TeX: {tex[:3]}"
    paths = re.findall(r".{0,30}/(?:tmp|home|work|root)/.{0,30}", text)
    assert not paths, f"{html.name}: machine paths: {paths[:3]}"
    assert not seen["streams"], f"{html.name}: stray printed lines: {seen['streams'][:3]}"
    if math is not None: assert bool(seen["maths"]) == math, f"{html.name}: {len(seen['maths'])} formulas"
    assert all(w > 0 and h > 0 for w, h in seen["maths"]), f"{html.name}: formulas that did not render: {seen['maths']}"
    assert page.screenshot(shot).stat().st_size > 10_000
    left = [u for u in page.requests if not u.startswith(("file:", "data:", "about:"))]
    assert not left, f"{html.name}: requests that left the machine: {left}"
    return seen


@pytest.mark.parametrize("report", ["effective_robustness", "correlation", "shift_gallery", "adversarial"])
def test_every_default_report_as_read(reports, page, tmp_path, report):
    "Each default report of the shared study, screenshotted in Chromium: no raw TeX, no machine paths, no stray lines."
    seen = check_as_read(page, reports / "digits" / f"{report}.html", tmp_path / f"{report}.png")
    assert len(seen["text"]) > 500


def test_index_opens_and_links_resolve(reports, page, tmp_path):
    page.open((reports / "index.html").as_uri())
    assert page.eval("document.querySelectorAll('td.ok').length") == 4
    links = page.eval("[...document.querySelectorAll('a')].map(a => a.href)")
    assert links and all(Path(urllib.request.url2pathname(u[len('file://'):])).exists() for u in links), links
    assert all(i["w"] > 0 for i in page.eval(IMAGES))
    page.open(next(u for u in links if u.endswith("shift_gallery.html")))   # follow a link from the index
    imgs = page.eval(IMAGES)
    assert imgs and all(i["w"] > 0 for i in imgs)
    shot = page.screenshot(tmp_path / "index.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    left = [u for u in page.requests if not u.startswith(("file:", "data:", "about:"))]
    assert not left, f"requests that left the machine: {left}"
