"""The offline documentation site in `_docs/`, checked statically and in headless Chromium.

`make docs` builds the site; when `_docs/` has no Sphinx build, or one older than a notebook, these tests build it first.
The browser tests need Debian's chromium and chromium-driver (/usr/bin/chromium and
/usr/bin/chromedriver), which `.ci/run` installs. Elsewhere they skip when those are missing,
but with CI=true a missing browser or site is a failure.
"""
import ast
import functools
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_docs"
SCREENSHOTS = SITE / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
IN_CI = os.environ.get("CI", "").lower() == "true"
# Pages opened in the browser and saved as screenshots: the home page and two chapters.
BROWSER_PAGES = ["index.html", "bspline.html", "training.html"]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1440,1000"]


def skip_or_fail(reason):
    """Skip outside CI; in CI (CI=true) the same condition is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site():
    """The built site folder, built with `docs/build_docs.py --sphinx` if it is missing or older than a notebook."""
    index = SITE / "searchindex.js"
    newest_notebook = max(p.stat().st_mtime for p in (ROOT / "nbs").glob("*.ipynb"))
    if not index.exists() or index.stat().st_mtime < newest_notebook:
        try:
            import myst_nb  # noqa: F401
            import sphinx_book_theme  # noqa: F401
        except ImportError:
            skip_or_fail("the docs tools are not installed: run `make docs` (or pip install -e '.[dev]')")
        build = subprocess.run([sys.executable, "docs/build_docs.py", "--sphinx"], cwd=ROOT,
                               capture_output=True, text=True, timeout=600)
        if build.returncode != 0:
            output = (build.stdout + build.stderr)[-3000:]
            if "npm was not found" in output:
                skip_or_fail("the site needs a local MathJax copy and npm is missing: install Node.js")
            pytest.fail(f"docs/build_docs.py failed:\n{output}")
    return SITE


def html_pages(site):
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)


# ---------------------------------------------------------------- static checks


class ResourceLinks(HTMLParser):
    """Collect the URLs a page loads: scripts, stylesheets, fonts, icons and inline-CSS urls."""

    def __init__(self):
        super().__init__()
        self.urls = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            rel = (attrs.get("rel") or "").lower()
            if any(word in rel for word in ("stylesheet", "preload", "icon", "modulepreload", "font")):
                self.urls.append(attrs["href"])
        if tag in ("img", "source", "iframe") and attrs.get("src"):
            self.urls.append(attrs["src"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += css_urls(data)


def css_urls(css):
    return re.findall(r"url\(\s*['\"]?([^'\")]+)", css) + re.findall(r"@import\s+['\"]([^'\"]+)", css)


def is_external(url):
    return url.startswith("//") or urlparse(url).scheme in ("http", "https", "ftp", "ws", "wss")


def test_site_pages_load_nothing_external(site):
    external = []
    for page in html_pages(site):
        parser = ResourceLinks()
        parser.feed(page.read_text(encoding="utf-8"))
        external += [f"{page.relative_to(site)}: {url}" for url in parser.urls if is_external(url)]
    for css in site.rglob("*.css"):
        external += [f"{css.relative_to(site)}: {url}" for url in css_urls(css.read_text(encoding="utf-8"))
                     if is_external(url)]
    assert external == [], "pages load scripts, styles or fonts from the network:\n" + "\n".join(external)


def test_site_mathjax_is_local(site):
    pages_with_math = [p for p in html_pages(site) if 'class="math' in p.read_text(encoding="utf-8")]
    assert pages_with_math, "no page contains math"
    for page in pages_with_math:
        assert '_static/mathjax/tex-chtml.js' in page.read_text(encoding="utf-8"), page.name
    assert (site / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert list((site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))


def public_api():
    """(module, name) for every function or class in a module's `__all__`, and every method
    that a chapter adds to a class of another module with `@patch` (from nbdev's `_modidx.py`)."""
    namespace = {}
    exec((ROOT / "kan_nb" / "_modidx.py").read_text(encoding="utf-8"), namespace)
    syms = namespace["d"]["syms"]
    names = []
    for module, entries in syms.items():
        tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
        exported = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
                exported = set(ast.literal_eval(node.value))
        defined = {q[len(module) + 1:] for q in entries}
        names += [(module, n) for n in sorted(exported & defined)]
        for qualname in entries:
            owner, _, method = qualname[len(module) + 1:].partition(".")
            if method and owner not in defined and not method.startswith("_") and not owner.startswith("_"):
                names.append((module, f"{owner}.{method}"))
    return names


def anchors_of(page_path):
    return set(re.findall(r'\bid="([^"]+)"', page_path.read_text(encoding="utf-8")))


def test_modidx_links_resolve_in_site(site):
    namespace = {}
    exec((ROOT / "kan_nb" / "_modidx.py").read_text(encoding="utf-8"), namespace)
    links = {q: link for syms in namespace["d"]["syms"].values() for q, (link, _) in syms.items()}
    problems = []
    for module, name in public_api():
        page, anchor = links[f"{module}.{name}"].split("#")
        if not (site / page).exists():
            problems.append(f"{module}.{name}: page {page} is missing")
        elif anchor not in anchors_of(site / page):
            problems.append(f"{module}.{name}: {page} has no anchor #{anchor}")
    assert problems == [], "\n".join(problems)


def test_api_page_links_every_public_name(site):
    api_html = (site / "api.html").read_text(encoding="utf-8")
    links = re.findall(r'<a class="reference internal" href="([^"#]+\.html#[^"]+)"[^>]*>'
                       r'(?:<[^>]+>)*([^<]+)<', api_html)
    by_name = {text.strip(): href for href, text in links}
    problems = []
    for module, name in public_api():
        href = by_name.get(name)
        if href is None:
            problems.append(f"{module}.{name}: no linked entry on api.html")
            continue
        page, anchor = href.split("#")
        if anchor not in anchors_of(site / page):
            problems.append(f"{module}.{name}: {href} points to a missing anchor")
    assert problems == [], "\n".join(problems)


def test_chapter_pages_exist_in_book_order(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    nav = index[index.index('bd-docs-nav'):]
    nav = nav[:nav.index("</nav>")]
    hrefs = re.findall(r'href="([^"#]+\.html)"', nav)
    notebooks = sorted(p.name for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))
    pages = [page_name_of(name) for name in notebooks]
    assert [h for h in hrefs if h in pages] == pages, (
        f"sidebar {hrefs} does not list the chapters {pages} in book order; if a notebook was "
        "added since the last build, run `make docs`")
    for href in hrefs:
        assert (site / href).exists(), f"sidebar link {href} has no page"


def page_name_of(notebook_name):
    """The page nbdev makes of a notebook: the name without its number prefix, as `.html`."""
    return re.sub(r"^\d+[a-zA-Z0-9]*_", "", Path(notebook_name).stem) + ".html"


# ---------------------------------------------------------------- browser checks


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def server(site):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        skip_or_fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing: install Debian's chromium and "
                     "chromium-driver packages to run the browser tests")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        skip_or_fail("selenium is not installed: pip install -e '.[dev]'")
    # Selenium skips Selenium Manager when the driver path is given; these keep it offline anyway.
    os.environ.setdefault("SE_OFFLINE", "true")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def open_page(browser, url):
    """Load `url` and wait until MathJax (if the page has it) has typeset every formula."""
    browser.get(url)
    browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const finish = () => setTimeout(done, 50);
        if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
            MathJax.startup.promise.then(finish, finish);
        } else if (document.querySelector('script[src*="mathjax"]')) {
            // MathJax is still loading (the script is async): wait for its startup promise.
            const t0 = Date.now();
            const poll = () => (window.MathJax && MathJax.startup && MathJax.startup.promise)
                ? MathJax.startup.promise.then(finish, finish)
                : (Date.now() - t0 > 20000 ? done() : setTimeout(poll, 50));
            poll();
        } else { finish(); }
    """)


VISIBLE_TEXT_JS = """
    // Text of the article that is not code and not typeset math.
    const root = document.querySelector('article') || document.body;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const skip = 'pre, code, mjx-container, script, style, .highlight';
    const parts = [];
    while (walker.nextNode()) {
        const node = walker.currentNode;
        if (!node.parentElement.closest(skip)) parts.push(node.textContent);
    }
    return parts.join(' ');
"""


def render_problems(browser, server, page):
    """Open one page and list what a reader would see broken on it."""
    open_page(browser, urljoin(server, page))
    problems = []
    untypeset = browser.execute_script(
        "return Array.from(document.querySelectorAll('span.math, div.math'))"
        ".filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80))")
    if untypeset:
        problems.append(f"{page}: formulas left as TeX: {untypeset[:5]}")
    # A TeX error renders as <merror>; an unknown macro renders as red text starting with "\".
    errors = browser.execute_script(
        "return Array.from(document.querySelectorAll('mjx-merror'))"
        ".map(e => e.getAttribute('data-mjx-error') || e.textContent)"
        ".concat(Array.from(document.querySelectorAll('mjx-assistive-mml mtext'))"
        ".map(e => e.textContent).filter(t => t.startsWith('\\\\')))")
    if errors:
        problems.append(f"{page}: MathJax could not typeset: {errors[:5]}")

    text = browser.execute_script(VISIBLE_TEXT_JS)
    raw_dollars = re.findall(r"\$[^$\n]{1,80}\$", text)
    if raw_dollars:
        problems.append(f"{page}: raw $...$ left in the text: {raw_dollars[:5]}")
    raw_fences = re.findall(r":{3,}[^:\n]{0,40}", text)
    if raw_fences:
        problems.append(f"{page}: Quarto ::: blocks left unconverted: {raw_fences[:5]}")

    broken = browser.execute_script(
        "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.getAttribute('src'))")
    if broken:
        problems.append(f"{page}: images that did not load: {broken}")

    requests = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    outside = [url for url in requests if not url.startswith(server)]
    if outside:
        problems.append(f"{page}: requested resources from outside the site: {outside}")
    return problems


def expected_figures():
    """Page name -> number of image outputs that nbdev's processed notebook (`_proc/`) shows."""
    counts = {}
    for path in sorted((ROOT / "_proc").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        count = 0
        for cell in nb["cells"]:
            source = "".join(cell.get("source", ""))
            if re.search(r"^#\|\s*(output|include):\s*false", source, re.M):
                continue
            for output in cell.get("outputs", []):
                count += any(kind.startswith("image/") for kind in output.get("data", {}))
        output_file = re.search(r"^output-file:\s*(\S+)", "".join(nb["cells"][0]["source"]), re.M)
        counts[output_file.group(1) if output_file else page_name_of(path.name)] = count
    return counts


def test_every_page_renders_offline(browser, server, site):
    pages = [p.relative_to(site).as_posix() for p in html_pages(site)
             if p.name not in ("search.html", "genindex.html")]
    figures = expected_figures()
    problems = []
    for page in pages:
        problems += render_problems(browser, server, page)
        figures_shown = browser.execute_script("return document.querySelectorAll('div.cell_output img').length")
        if page in figures and figures_shown != figures[page]:
            problems.append(f"{page}: shows {figures_shown} figures, its notebook has {figures[page]}")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("page", BROWSER_PAGES)
def test_page_shows_math_and_figures(browser, server, page):
    problems = render_problems(browser, server, page)
    assert problems == [], "\n".join(problems)

    typeset = browser.execute_script("return document.querySelectorAll('mjx-container').length")
    assert typeset > 0, f"{page} shows no typeset formula"
    if page != "index.html":
        figures = browser.execute_script("return document.querySelectorAll('div.cell_output img').length")
        assert figures > 0, f"{page} shows no figure"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / page.replace(".html", ".png")))


def test_sidebar_links_resolve(browser, server):
    open_page(browser, server)
    hrefs = browser.execute_script(
        "return Array.from(document.querySelectorAll('nav.bd-docs-nav a')).map(a => a.href)")
    titles = browser.execute_script(
        "return Array.from(document.querySelectorAll('nav.bd-docs-nav a')).map(a => a.textContent.trim())")
    assert len(hrefs) >= len(list((ROOT / "nbs").glob("[0-9]*.ipynb"))), f"sidebar lists only {titles}"
    for href in hrefs:
        assert href.startswith(server), f"sidebar link {href} leaves the site"
        with urllib.request.urlopen(href, timeout=10) as response:
            assert response.status == 200, href
            assert "<article" in response.read().decode("utf-8"), f"{href} is not a book page"


def test_search_finds_spline_chapter(browser, server):
    open_page(browser, urljoin(server, "search.html?q=B-spline"))
    deadline = time.monotonic() + 20
    results = []
    while time.monotonic() < deadline:
        results = browser.execute_script(
            "return Array.from(document.querySelectorAll('#search-results li a')).map(a => a.href)")
        if results:
            break
        time.sleep(0.2)
    assert results, "the search for 'B-spline' returned nothing"
    assert any(urlparse(url).path.endswith("/bspline.html") for url in results), results
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "search.png"))
