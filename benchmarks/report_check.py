"""The Snakemake report as a reader sees it: `snakemake --report report.html`, rendered in Chromium.

The report is a JavaScript app (React, Tailwind compiled in the page), so what a reader sees is the
DOM after its scripts ran, and the results only appear after clicks. This script:

1. builds the smoke profile's two tables in a scratch project (workflow/ and the smoke profile as
   params.yaml, `snakemake results/glue.csv results/domain_adaptation.csv`, ~5 min on 2 cores),
   or takes ``--project DIR`` where they are built;
2. writes ``report.html`` there and checks that every result is embedded in it as a data: URI
   (Snakemake 9 does so for files; ``--report report.zip`` is only needed for directories);
3. opens it in headless Chromium over the DevTools protocol (on a pipe: no websocket package) and
   clicks as a reader does: a category in the menu, then a result's eye (view) or ⓘ (description)
   button. A screenshot of each view goes to ``--shots``, with the view's visible text beside it,
   and the page must fetch nothing beyond itself (it is one file, to be mailed or archived);
4. checks the rendered DOM: each table result's description holds an HTML table whose cells are
   the CSV's (so the numbers are in the page, not behind a download), and each figure's eye shows
   an <img> whose data is the PNG's bytes. results/glue.csv and results/domain_adaptation.png must
   be among them.

It prints what it measured (build, report and page-load times, the report's size, each view) and
exits 1 with one line on the first failure. Chromium: ``--chromium``, else chromium on PATH, else
(as root, with apt-get) Debian's package is installed.

    python benchmarks/report_check.py --shots /tmp/report_shots          # builds (~5 min)
    python benchmarks/report_check.py --project DIR --shots /tmp/shots   # a built project (~20 s)
"""

from __future__ import annotations

import argparse
import base64
import csv
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_GLUE, OFFLINE  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("results/glue.csv", "results/domain_adaptation.csv")
REQUIRED = ("results/glue.csv", "results/domain_adaptation.png")  # what the issue names
SIZE = (1400, 2000)

# Loaded once the app rendered and Tailwind (compiled in the page, after React) styled it: the
# menu's text is white then. Before that a screenshot shows an unstyled page.
READY = """document.readyState === 'complete' && typeof app !== 'undefined'
  && !!document.querySelector('#app nav a')
  && getComputedStyle(document.querySelector('#app nav')).color === 'rgb(255, 255, 255)'"""

# What a reader looks for, by what a reader sees: menu entries by their text, a result's row by the
# labels shown in its cells (the report's `results` says which labels a path has).
HELPERS = r"""
window.__rc = {
  menu: (label) => [...document.querySelectorAll('#app nav a')].find((a) => [label,
    Object.keys(categories).length === 1 ? 'Results' : null].includes(a.textContent.trim())) || null,
  row: (path) => {
    const labels = results[path].labels;
    for (const table of document.querySelectorAll('#app nav table')) {
      const heads = [...table.querySelectorAll('thead th')].slice(0, -1).map((th) => th.textContent);
      const want = JSON.stringify(labels ? heads.map((h) => labels[h] || '') : [path]);
      for (const tr of table.querySelectorAll('tbody tr')) {
        const cells = [...tr.children].slice(0, -1).map((td) => td.textContent);
        if (JSON.stringify(cells) === want) return tr;
      }
    }
    return null;
  },
  button: (path, which) => {
    const tr = window.__rc.row(path);
    return tr ? tr.lastElementChild.querySelectorAll('a')[which] || null : null;
  },
  tables: () => [...document.querySelectorAll('#app nav .prose table')].map((t) =>
    [...t.rows].map((r) => [...r.cells].map((c) => c.textContent.trim()))),
  fit: (i) => {  // [the table's width, its column's]: wider means cut off at the right
    const t = document.querySelectorAll('#app nav .prose table')[i];
    const nav = document.querySelector('#app nav');
    return [t.scrollWidth, nav.clientWidth, t.getBoundingClientRect().right
      <= nav.getBoundingClientRect().right + 1];
  },
  shown: () => [...document.querySelectorAll('#app img')]
    .filter((i) => !i.closest('nav')).map((i) => i.src),
};
true
"""
VIEW, INFO = 0, 1  # a result row's buttons: the eye, then the ⓘ


class CheckFailed(Exception):
    """One line for the reader of the script's output."""


def run_env(glue_dir: str) -> dict[str, str]:
    env = {**os.environ, **OFFLINE, "GLUE_DIR": glue_dir}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # mtdnn
    return env


def snakemake(project: Path, env: dict[str, str], *args: str) -> float:
    """Run Snakemake in ``project``; its output goes to a log there. Returns the seconds it took."""
    log = project / f"report_check.{args[0].lstrip('-')}.log"
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "snakemake", *args], cwd=project, env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    if done.returncode != 0:
        last = log.read_text().strip().splitlines()[-1:] or [""]
        raise CheckFailed(f"snakemake {' '.join(args)} failed ({last[0]}); see {log}")
    return time.perf_counter() - start


def build_project(dest: Path, env: dict[str, str]) -> Path:
    """The smoke profile's tables in a bare copy of the workflow (as tests/smoke_workflow.py)."""
    shutil.copytree(REPO / "workflow", dest / "workflow")
    shutil.copy(REPO / "mtdnn/profiles/smoke.yaml", dest / "params.yaml")
    seconds = snakemake(dest, env, "--cores", "2", *TARGETS)
    print(f"build: snakemake --cores 2 {' '.join(TARGETS)} in {dest}: {seconds:.0f} s")
    return dest


def write_report(project: Path, env: dict[str, str]) -> Path:
    """`snakemake --report report.html`, and what makes it stand alone: scripts and styles inline,
    every result a data: URI (a .zip report would keep them as files beside the page)."""
    seconds = snakemake(project, env, "--report", "report.html")
    page = project / "report.html"
    html = page.read_text(encoding="utf-8")
    found = re.search(r'<script id="results">\s*var results = (.*?);\s*</script>', html, re.S)
    if found is None:
        raise CheckFailed("report.html has no results block (not a Snakemake 9 HTML report?)")
    results = json.loads(found.group(1))
    not_inline = [p for p, r in results.items() if not r["data_uri"].startswith("data:")]
    if not_inline:
        raise CheckFailed(f"report.html links {not_inline[0]} instead of embedding it")
    print(
        f"report: snakemake --report report.html: {seconds:.1f} s, {len(html) / 1e6:.1f} MB, "
        f"{len(results)} results, all embedded as data: URIs"
    )
    return page


def find_chromium(explicit: str | None) -> str:
    """Chromium from --chromium or PATH; as root with apt-get, Debian's package when it is not
    there (CI starts on a fresh machine)."""
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise CheckFailed("no chromium: apt-get install chromium (as root), or pass --chromium")
    print("chromium: not found; apt-get install -y chromium ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise CheckFailed(f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}")
    if found := shutil.which("chromium"):
        return found
    raise CheckFailed("apt-get installed chromium, yet it is not on PATH")


class DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
    JSON messages ending in NUL, commands on the child's fd 3, answers on its fd 4)."""

    def __init__(self, exe: str, profile: Path, log: Path):
        to_child, self.wfd = os.pipe()
        self.rfd, from_child = os.pipe()

        def child_fds() -> None:
            # Up out of the way first, so that neither dup2 overwrites the other's source.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
        args += ["--remote-debugging-pipe", "--no-first-run", f"--user-data-dir={profile}"]
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [exe, *args, f"--window-size={SIZE[0]},{SIZE[1]}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, preexec_fn=child_fds,
                close_fds=False,  # fds 3 and 4 must survive; Python's own fds are not inheritable
            )  # fmt: skip
        os.close(to_child)
        os.close(from_child)
        self.log, self.buffer, self.last_id = log, b"", 0
        self.requests: list[str] = []  # anything the page fetched beyond data:/file:

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
                raise CheckFailed(f"Chromium did not answer in time (log: {self.log})")
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise CheckFailed(f"Chromium exited (log: {self.log})")
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params):
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.wfd, data) :]
        deadline = time.monotonic() + timeout
        while True:
            reply = self._message(deadline)
            if reply.get("method") == "Network.requestWillBeSent":
                url = reply["params"]["request"]["url"]
                if not url.startswith(("data:", "file:", "about:")):
                    self.requests.append(url)
            if reply.get("id") == self.last_id:
                if "error" in reply:
                    raise CheckFailed(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except CheckFailed:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.wfd)
        os.close(self.rfd)


class Page:
    """One tab of the report: open it, wait for what a reader would wait for, click, screenshot."""

    def __init__(self, tools: DevTools, shots: Path):
        target = tools.call("Target.createTarget", url="about:blank")["targetId"]
        attached = tools.call("Target.attachToTarget", targetId=target, flatten=True)
        self.tools, self.session, self.shots = tools, attached["sessionId"], shots
        self.call("Network.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=SIZE[0], height=SIZE[1],
                  deviceScaleFactor=1, mobile=False)  # fmt: skip

    def call(self, method: str, **params):
        return self.tools.call(method, session=self.session, **params)

    def js(self, expression: str):
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CheckFailed(f"script in the page failed: {str(text).splitlines()[0]}")
        return reply["result"].get("value")

    def wait(self, expression: str, what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not self.js(expression):
            if time.monotonic() > deadline:
                raise CheckFailed(f"{what}: not there after {timeout:.0f} s")
            time.sleep(0.1)

    def open(self, url: str) -> float:
        start = time.perf_counter()
        self.call("Page.navigate", url=url)
        self.wait(READY, "the report's app, styled")
        self.js(HELPERS)
        return time.perf_counter() - start

    def click(self, element: str, what: str) -> None:
        """A mouse click at the element's centre, as a reader's (React sees a real event)."""
        point = self.js(
            f"(() => {{ const el = {element}; if (!el) return null; el.scrollIntoView("
            "{block: 'center'}); const r = el.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        if point is None:
            raise CheckFailed(f"nothing to click: {what}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=point[0], y=point[1],
                      button="left", clickCount=1)  # fmt: skip

    def shoot(self, name: str) -> Path:
        """A screenshot, and the view's visible text beside it (what the DOM shows, greppable)."""
        time.sleep(0.4)  # the menu's width and the buttons animate (Tailwind transitions, 150 ms)
        png = self.shots / f"{name}.png"
        png.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        png.with_suffix(".txt").write_text(self.js("document.body.innerText"), encoding="utf-8")
        return png


def category_of(page: Page, path: str) -> str:
    return page.js(
        f"Object.keys(categories).find((c) => Object.values(categories[c])"
        f".some((paths) => paths.includes({json.dumps(path)})))"
    )


def open_category(page: Page, url: str, category: str, path: str) -> None:
    """From the opening page: the category in the menu, until the result's row is listed."""
    page.open(url)
    page.click(f"window.__rc.menu({json.dumps(category)})", f"menu entry {category!r}")
    page.wait(f"!!window.__rc.row({json.dumps(path)})", f"{category}: the row of {path}")


def check_table(page: Page, url: str, project: Path, path: str) -> str:
    """A CSV's eye only downloads it; its description (ⓘ) must hold the table itself."""
    category = category_of(page, path)
    open_category(page, url, category, path)
    eye = page.js(f"window.__rc.button({json.dumps(path)}, {VIEW}).getAttribute('href')")
    page.click(f"window.__rc.button({json.dumps(path)}, {INFO})", f"ⓘ of {path}")
    page.wait("!!document.querySelector('#app nav .prose')", f"description of {path}")
    shot = page.shoot(f"{slug(category)}-{Path(path).stem}-info")
    with (project / path).open(newline="", encoding="utf-8") as f:
        want = [[cell.strip() for cell in row] for row in csv.reader(f)]
    tables = page.js("window.__rc.tables()")
    if want not in tables:
        raw = "|---" in page.js("document.querySelector('#app nav .prose').innerText")
        how = "as raw Markdown" if raw else f"{len(tables)} table(s), none with the CSV's cells"
        raise CheckFailed(f"{path}: its description in the page shows {how} ({shot})")
    width, column, fits = page.js(f"window.__rc.fit({tables.index(want)})")
    if not fits:
        raise CheckFailed(f"{path}: its table ({width} px) is cut off by its column ({column} px)")
    kind = "a download" if eye and eye.startswith("data:") else f"href {eye!r}"
    return (
        f"{category} › ⓘ {path}: table {len(want) - 1}×{len(want[0])} with every CSV cell "
        f"(header {', '.join(want[0][:4])}…), {width} px wide in a {column} px column, "
        f"eye button = {kind}; {shot}"
    )


def check_figure(page: Page, url: str, project: Path, path: str) -> str:
    """A figure's eye shows it in the main pane; then ⓘ puts its caption beside it."""
    category = category_of(page, path)
    open_category(page, url, category, path)
    page.click(f"window.__rc.button({json.dumps(path)}, {VIEW})", f"eye of {path}")
    page.wait("window.__rc.shown().length > 0", f"{path} shown after its eye button")
    page.click(f"window.__rc.button({json.dumps(path)}, {INFO})", f"ⓘ of {path}")
    page.wait("!!document.querySelector('#app nav .prose')", f"caption of {path}")
    shot = page.shoot(f"{slug(category)}-{Path(path).stem}")
    src = page.js("window.__rc.shown()")[0]
    shown = base64.b64decode(src.partition("base64,")[2])
    if shown != (project / path).read_bytes():
        raise CheckFailed(f"{path}: the image in the page is not the file's bytes ({shot})")
    size = page.js("(() => { const i = [...document.querySelectorAll('#app img')]"
                   ".find((i) => !i.closest('nav')); return [i.naturalWidth, i.naturalHeight,"
                   " i.getBoundingClientRect().width]; })()")  # fmt: skip
    return (
        f"{category} › eye + ⓘ {path}: <img> {size[0]}×{size[1]} px (drawn {size[2]:.0f} px "
        f"wide) = the PNG's {len(shown):,} bytes, caption beside it; {shot}"
    )


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def check_page(page: Path, project: Path, tools: DevTools, shots: Path) -> list[str]:
    """The opening view, each category's list, then every table and figure of the report."""
    tab = Page(tools, shots)
    url = page.resolve().as_uri()
    seconds = tab.open(url)
    lines = [f"opening view (rule graph, menu) in {seconds:.1f} s; {tab.shoot('landing')}"]
    paths = tab.js("Object.keys(results)")
    missing = [p for p in REQUIRED if p not in paths]
    if missing:
        raise CheckFailed(f"{missing[0]} is not in the report (results: {', '.join(paths)})")
    for category in sorted(tab.js("Object.keys(categories)")):
        first = next(p for p in paths if category_of(tab, p) == category)
        open_category(tab, url, category, first)
        lines.append(f"{category} (menu): {tab.shoot(slug(category))}")
    mimes = tab.js("Object.fromEntries(Object.entries(results).map(([p, r]) => [p, r.mime_type]))")
    for path in paths:
        if mimes[path] == "text/csv":
            lines.append(check_table(tab, url, project, path))
        elif mimes[path].startswith("image/"):
            lines.append(check_figure(tab, url, project, path))
    if tools.requests:
        raise CheckFailed(f"the page fetched {tools.requests[0]} (it should stand alone)")
    return lines + ["network: the page fetched nothing beyond itself"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--project", type=Path, help="a project with both tables built (default: build)")
    p.add_argument("--shots", type=Path, help="screenshots (default: report_shots/ in the project)")
    p.add_argument("--glue-dir", default=os.environ.get("GLUE_DIR", DEFAULT_GLUE))
    p.add_argument("--chromium", help="the browser (default: chromium on PATH, else apt-get)")
    p.add_argument("--keep", action="store_true", help="keep the scratch project it built")
    return p.parse_args()


def run(args: argparse.Namespace, scratch: Path) -> list[str]:
    env = run_env(args.glue_dir)
    exe = find_chromium(args.chromium)  # first: no build for minutes, then no browser
    if args.project:
        project = args.project.resolve()
        missing = [t for t in TARGETS if not (project / t).is_file()]
        if missing:
            raise CheckFailed(f"{project} has no {missing[0]}: build it, or leave out --project")
    else:
        project = build_project(scratch / "project", env)
    page = write_report(project, env)
    shots = (args.shots or project / "report_shots").resolve()
    shots.mkdir(parents=True, exist_ok=True)
    shutil.copy(page, shots / "report.html")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"browser: {version}, headless, {SIZE[0]}×{SIZE[1]} window")
    tools = DevTools(exe, scratch / "chromium-profile", shots / "chromium.log")
    try:
        return check_page(page, project, tools, shots)
    finally:
        tools.close()


def main() -> int:
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="report-check-"))
    try:
        for line in run(args, scratch):
            print(line)
    except CheckFailed as failed:
        if args.project is None:  # kept: the failure may point at a log of its build
            failed = f"{failed} (scratch kept: {scratch})"
        else:
            shutil.rmtree(scratch, ignore_errors=True)
        print(f"report_check: FAIL: {failed}", file=sys.stderr)
        return 1
    if args.keep:
        print(f"scratch kept: {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    print("report_check: OK: the GLUE table and the adaptation plot are in the rendered page")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
