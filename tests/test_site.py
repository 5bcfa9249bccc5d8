"""The built book in a real browser, and chapter 1 in a real JupyterLab.

Both drive Debian's Chromium (``/usr/bin/chromium``) through Playwright,
which is told where that browser is and never downloads one of its own.

- The site tests read the book that ``jupyter-book build .`` wrote to
  ``_build/html``, serve it on loopback and visit every page. They save a
  screenshot of each chapter page in ``_build/screenshots/``.
- The JupyterLab test starts a server on loopback (a free port, a token, no
  browser of its own), opens a copy of chapter 1, runs every cell, and looks
  for the chapter's figure and its widget drawn as controls.

Without a built book, or without Chromium and Playwright, these tests skip
with the reason. CI sets ``DISTILL_LESSONS_REQUIRE_BROWSER=1``, which turns
each such skip into a failure. ``DISTILL_LESSONS_SITE`` points the site
tests at another built book (the folder holding ``index.html``).

    pip install -r requirements.txt && jupyter-book build .
    pytest tests/test_site.py -n0          # or: pytest -m browser -n0
"""

from __future__ import annotations

import ctypes
import functools
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("DISTILL_LESSONS_SITE", ROOT / "_build" / "html"))
# The book whose build SITE is: _build/html sits two levels below it.
BOOK = SITE.parents[1]
SCREENSHOTS = SITE.parent / "screenshots"
CHROMIUM = os.environ.get("DISTILL_LESSONS_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("DISTILL_LESSONS_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# What a Python error looks like once it has been printed into a page.
ERROR_TEXT = re.compile(
    r"Traceback \(most recent call last\)"
    r"|^\s*-+>\s*\d+"  # IPython's arrow at the failing line
    r"|^\w*(Error|Exception): ",
    re.MULTILINE,
)
# How a widget looks when no widget manager drew it: its repr as text.
WIDGET_AS_TEXT = re.compile(
    r"\b(IntSlider|FloatSlider|SelectionSlider|Dropdown|Play|VBox|HBox"
    r"|interactive)\(|Loading widget|Error displaying widget"
)

pytestmark = pytest.mark.browser


# sphinx-thebe's settings script is written into every page twice by the
# pinned jupyter-book 1.x stack; the second copy re-declares a constant.
# The book does not use thebe, so this one script error is harmless.
KNOWN_SCRIPT_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)


def unavailable(reason: str):
    """Skip, or fail when CI has said that nothing here may be skipped."""
    if REQUIRED:
        pytest.fail(f"{reason} (DISTILL_LESSONS_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def site_pages() -> list[Path]:
    """Every HTML page of the book, not Sphinx's own support files."""
    pages = []
    for path in sorted(SITE.rglob("*.html")):
        parts = path.relative_to(SITE).parts
        if not any(p.startswith(("_", ".")) for p in parts):
            pages.append(path)
    return pages


def chapter_pages() -> list[Path]:
    return sorted((SITE / "notebooks").glob("[0-9][0-9]_*.html"))


def page_id(path: Path) -> str:
    return str(path.relative_to(SITE))


# --- fixtures -------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium with a fresh profile of its own."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable(
            "Playwright is not installed (pip install -r requirements.txt)"
        )
    if not Path(CHROMIUM).exists():
        unavailable(
            f"no Chromium at {CHROMIUM} (apt-get install chromium); "
            "Playwright must not download a browser of its own"
        )
    with (
        tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile,
        sync_playwright() as pw,
    ):
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            accept_downloads=True,
            viewport={"width": 1280, "height": 900},
        )
        # Generous: CI runs these beside a notebook on the other core.
        context.set_default_timeout(90_000)
        yield context
        context.close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test reports what matters
        pass


@pytest.fixture(scope="module")
def site():
    """The built book, served over HTTP on a free loopback port."""
    if not (SITE / "index.html").exists():
        unavailable(
            f"the book is not built ({SITE / 'index.html'} is missing); "
            "run `jupyter-book build .` first"
        )
    handler = functools.partial(QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def open_page(browser, url):
    """Open ``url``; return the page and the JS errors it raised."""
    page = browser.new_page()
    errors = []
    page.on(
        "pageerror",
        lambda err: (
            None
            if any(k in str(err) for k in KNOWN_SCRIPT_ERRORS)
            else errors.append(str(err))
        ),
    )
    response = page.goto(url, wait_until="load")
    assert response is not None and response.ok, f"{url}: {response}"
    # The root index.html forwards to the first page: let that settle. A
    # page with a widget also asks two CDNs for scripts; on a machine that
    # cannot reach them such a request may hang, so the network is given a
    # while to go quiet and then the page is read as it stands.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_load_state("networkidle", timeout=20_000)
    except PlaywrightTimeout:
        page.wait_for_load_state("load")
    return page, errors


# --- the rendered book ---------------------------------------------------


def test_the_book_has_chapter_pages(site):
    assert chapter_pages(), f"no chapter pages in {SITE / 'notebooks'}"
    assert len(site_pages()) > len(chapter_pages())


def test_every_page_loads_without_errors_or_tracebacks(site, browser):
    problems = []
    for path in site_pages():
        page, js_errors = open_page(browser, f"{site}/{page_id(path)}")
        outputs = page.locator(".cell_output, .output").all_inner_texts()
        shown = "\n".join(outputs)
        match = ERROR_TEXT.search(shown)
        if match:
            problems.append(f"{page_id(path)}: shows {match.group(0)!r}")
        if page.locator("div.output.traceback, div.output.error").count():
            problems.append(f"{page_id(path)}: has an error output")
        if js_errors:
            problems.append(f"{page_id(path)}: script error {js_errors[0]}")
        page.close()
    assert not problems, "\n".join(problems)


def figures_in_executed_notebook(stem: str) -> int:
    """Images the page should show: outputs of cells the book keeps."""
    executed = SITE.parent / "jupyter_execute" / "notebooks" / f"{stem}.ipynb"
    if not executed.exists():
        return 1  # at least one, if the build kept no executed copy
    nb = json.loads(executed.read_text(encoding="utf-8"))
    count = 0
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if {"remove-cell", "remove-output"} & set(tags):
            continue
        for out in cell.get("outputs", []):
            if "image/png" in out.get("data", {}):
                count += 1
    return count


@pytest.mark.parametrize("path", chapter_pages(), ids=lambda p: p.stem)
def test_chapter_page_shows_its_figures_and_is_photographed(
    path, site, browser
):
    page, _ = open_page(browser, f"{site}/{page_id(path)}")
    expected = figures_in_executed_notebook(path.stem)
    assert expected >= 1, f"{path.stem} draws no figure"
    images = page.locator(".cell_output img")
    assert images.count() >= expected, (
        f"{path.stem}: {images.count()} figures shown, {expected} drawn"
    )
    for index in range(images.count()):
        image = images.nth(index)
        image.scroll_into_view_if_needed()
        width = image.evaluate("img => img.complete && img.naturalWidth")
        assert width and width > 50, f"{path.stem}: figure {index} is empty"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # From the top, so the fixed header and sidebar are drawn where they
    # belong in the full-page picture.
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{path.stem}.png"), full_page=True)
    page.close()


@pytest.mark.parametrize("path", chapter_pages(), ids=lambda p: p.stem)
def test_download_button_offers_the_notebook(path, site, browser):
    page, _ = open_page(browser, f"{site}/{page_id(path)}")
    page.locator(".dropdown-download-buttons button.dropdown-toggle").click()
    link = page.locator(".dropdown-download-buttons a", has_text=".ipynb")
    assert link.is_visible()
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == f"{path.stem}.ipynb"
    got = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    source = BOOK / "notebooks" / f"{path.stem}.ipynb"
    want = json.loads(source.read_text(encoding="utf-8"))
    assert [c["source"] for c in got["cells"]] == [
        c["source"] for c in want["cells"]
    ]
    page.close()


@pytest.mark.parametrize("path", chapter_pages(), ids=lambda p: p.stem)
def test_solutions_are_hidden_behind_a_toggle(path, site, browser):
    page, _ = open_page(browser, f"{site}/{page_id(path)}")
    solutions = page.locator(".cell.tag_solution")
    if not solutions.count():
        pytest.skip(f"{path.stem} shows no solution cells")
    for index in range(solutions.count()):
        cell = solutions.nth(index)
        code = cell.locator(".cell_input pre").first
        assert not code.is_visible(), f"solution {index} is not hidden"
        cell.locator("summary").first.click()
        assert code.is_visible(), f"solution {index} does not open"
    page.close()


def book_config() -> dict:
    return yaml.safe_load((BOOK / "_config.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", chapter_pages(), ids=lambda p: p.stem)
def test_launch_buttons_point_at_the_configured_repository(
    path, site, browser
):
    url = book_config()["repository"]["url"].rstrip("/")
    owner_repo = "/".join(url.split("/")[-2:])
    page, _ = open_page(browser, f"{site}/{page_id(path)}")
    hrefs = page.locator(".dropdown-launch-buttons a").evaluate_all(
        "links => links.map(a => a.href)"
    )
    notebook = f"notebooks/{path.stem}.ipynb"
    assert any(
        h.startswith(f"https://mybinder.org/v2/gh/{owner_repo}/")
        and h.endswith(notebook)
        for h in hrefs
    ), hrefs
    assert any(
        f"colab.research.google.com/github/{owner_repo}/blob/" in h
        and h.endswith(notebook)
        for h in hrefs
    ), hrefs
    page.close()


def test_search_finds_a_term_from_a_chapter(site, browser):
    chapter = chapter_pages()[0]
    page, _ = open_page(browser, f"{site}/{page_id(chapter)}")
    title = page.locator("h1").first.inner_text()
    page.close()
    # The title's longest word, e.g. "prediction" from chapter 1.
    term = max(re.findall(r"[A-Za-z]{5,}", title), key=len).lower()
    page, _ = open_page(browser, f"{site}/search.html?q={term}")
    hits = page.locator("#search-results li a")
    hits.first.wait_for(timeout=30_000)
    hrefs = hits.evaluate_all("links => links.map(a => a.href)")
    assert any(chapter.name in h for h in hrefs), (term, hrefs)
    page.close()


# --- chapter 1 in JupyterLab ---------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    """In the server's process: end it if the test process dies first."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # 1 is PR_SET_PDEATHSIG


def wait_for_server(url: str, proc, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"JupyterLab did not answer {url} in {seconds} s")


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on loopback, serving a copy of chapter 1."""
    chapters = sorted((ROOT / "notebooks").glob("01_*.ipynb"))
    if not chapters:
        pytest.skip("chapter 1 is not in notebooks/ yet")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(chapters[0], work / chapters[0].name)
    # Every cell in the page, so the test can read all of them at once.
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )
    # Nothing leaves the machine: no news feed, no update check, and an
    # extension manager that does not ask PyPI.
    config = tmp_path / "config"
    config.mkdir()
    (config / "jupyter_lab_config.json").write_text(
        json.dumps(
            {
                "LabApp": {
                    "news_url": None,
                    "extension_manager": "readonly",
                    "check_for_updates_class": "jupyterlab.handlers."
                    "announcements.NeverCheckForUpdate",
                },
                # CI runs as root, in a throwaway clone.
                "ServerApp": {"allow_root": True},
            }
        )
    )
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    env["JUPYTER_CONFIG_DIR"] = str(config)
    log = (tmp_path / "jupyterlab.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}",
            f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        preexec_fn=die_with_parent,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_server(f"{base}/api/status?token={token}", proc, 120)
        except (RuntimeError, TimeoutError) as err:
            log.flush()
            tail = (tmp_path / "jupyterlab.log").read_text()[-2000:]
            pytest.fail(f"{err}\n{tail}")
        nb = json.loads(chapters[0].read_text(encoding="utf-8"))
        code_cells = sum(c["cell_type"] == "code" for c in nb["cells"])
        yield f"{base}/lab/tree/{chapters[0].name}?token={token}", code_cells
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_chapter_one_runs_in_jupyterlab_with_its_figure_and_widget(
    jupyterlab, browser
):
    url, code_cells = jupyterlab
    page = browser.new_page()
    page.goto(url)
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=120_000)
    # The notebook is drawn cell by cell: wait for all of its code cells.
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
    deadline = time.monotonic() + 120
    while prompts.count() < code_cells and time.monotonic() < deadline:
        time.sleep(1)
    assert prompts.count() == code_cells
    page.locator(
        ".jp-Notebook-ExecutionIndicator[data-status='idle']"
    ).first.wait_for(timeout=120_000)

    def started():
        texts = [t.strip() for t in prompts.all_inner_texts()]
        return any(t != "[ ]:" for t in texts)

    # Run > Run All Cells; once more if the first click did not start it.
    run_all = "li.lm-Menu-item[data-command='runmenu:run-all']"
    for _ in range(2):
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator(run_all).click()
        deadline = time.monotonic() + 60
        while not started() and time.monotonic() < deadline:
            time.sleep(1)
        if started():
            break
    assert started(), "Run All Cells did not start the notebook"

    # Wait for every cell to show its execution count; stop early if the
    # run stopped (an error, or a kernel idle with cells still unrun).
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    errors = page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
    )
    deadline, idle_polls = time.monotonic() + 1200, 0
    while True:
        texts = [t.strip() for t in prompts.all_inner_texts()]
        if all(re.fullmatch(r"\[\d+\]:", t) for t in texts):
            break
        shown = "\n".join(errors.all_inner_texts())
        assert "Traceback" not in shown, shown[-3000:]
        running = any("*" in t for t in texts)
        idle_polls = idle_polls + 1 if idle.count() and not running else 0
        assert idle_polls < 15, f"the run stopped early: {texts}"
        assert time.monotonic() < deadline, f"cells did not finish: {texts}"
        time.sleep(2)

    outputs = "\n".join(
        page.locator(".jp-OutputArea-output").all_inner_texts()
    )
    assert "Traceback" not in outputs, outputs[-2000:]
    assert not WIDGET_AS_TEXT.search(outputs), WIDGET_AS_TEXT.search(outputs)

    figures = page.locator(".jp-OutputArea-output img")
    assert figures.count() >= 1
    assert figures.first.evaluate("img => img.naturalWidth") > 50

    slider = page.locator(".jp-OutputArea-output .widget-slider").first
    slider.scroll_into_view_if_needed()
    assert slider.is_visible()
    # A slider drawn by the widget manager has a handle one can move; moving
    # it makes the kernel redraw, so its readout changes.
    handle = slider.locator(".noUi-handle").first
    area = slider.locator(
        "xpath=ancestor::div[contains(@class, 'jp-OutputArea-output')]"
    ).first
    picture = area.locator("img").first
    before = picture.get_attribute("src")
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([img, old]) => img.isConnected ? img.src !== old : true",
        arg=[picture.element_handle(), before],
        timeout=60_000,
    )
    assert area.locator("img").first.get_attribute("src") != before

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "jupyterlab_chapter_01.png"))
    page.close()
