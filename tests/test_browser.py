"""Reports open offline in a real browser: headless Chromium (Debian's `chromium`) loads the index and a report,
every image loads, no request leaves the machine, and a screenshot is taken. Skips when chromium is absent."""
import base64
import json
import shutil
import subprocess
import sys
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
    assert len(imgs) >= 4, imgs
    assert all(i["w"] > 0 and i["h"] > 0 for i in imgs), f"images that did not load: {[i for i in imgs if not i['w']]}"
    assert "Effective robustness" in page.eval("document.body.innerText")
    shot = page.screenshot(tmp_path / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    left = [u for u in page.requests if not u.startswith(("file:", "data:", "about:"))]
    assert not left, f"requests that left the machine: {left}"


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
