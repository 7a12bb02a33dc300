"""The built book in a real browser: Debian's Chromium driven by Playwright.

The book is served from a local HTTP server on 127.0.0.1 (as it will be
published, not from file:// URLs) and every page reachable from the index is
visited: it loads, raises no script error, fetches nothing from outside, its
figures decode, its tables have rows, and every same-origin link it holds answers.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections import deque
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
import yaml

from test_book import build_once

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (install Debian's chromium package)"),
]

# Every <img> made eager and decoded; the natural width of each (0 = not decoded).
DECODED_IMAGES = """async () => {
    const images = Array.from(document.images);
    for (const img of images) { img.loading = "eager"; }
    await Promise.all(images.map((img) => img.decode().catch(() => null)));
    return images.map((img) => [img.getAttribute("src"), img.naturalWidth]);
}"""
TABLE_ROWS = "() => Array.from(document.querySelectorAll('table')).map((t) => t.querySelectorAll('tbody tr, tr').length)"
# Every table cell of the content that holds one number (not a link or code, such as a run id made of
# digits): its text, alignment and horizontal padding in px.
NUMBER_CELLS = r"""() => Array.from(document.querySelectorAll('article table td'))
    .filter((td) => !td.querySelector('a, code') && /^[-+\u2212]?\d[\d,]*(\.\d+)?( ?%)?$/.test(td.innerText.trim()))
    .map((td) => {
        const style = getComputedStyle(td);
        return [td.innerText.trim(), style.textAlign, parseFloat(style.paddingLeft) + parseFloat(style.paddingRight)];
    })"""
# Every table of the content column: the box it scrolls in (its nearest ancestor, or itself, that scrolls
# sideways; the table itself where none does), whether that box's right edge stays within the column, whether
# columns lie beyond it and the box marks that (a shadow: a gradient background), and the right end of the
# caption's text. px, from getBoundingClientRect.
TABLE_BOXES = """() => {
    const column = document.querySelector('article.bd-article');
    if (!column) return [];
    const columnRight = column.getBoundingClientRect().right;
    return Array.from(column.querySelectorAll('table')).map((table) => {
        let box = table;
        for (let element = table; element && element !== column; element = element.parentElement) {
            if (['auto', 'scroll'].includes(getComputedStyle(element).overflowX)) { box = element; break; }
        }
        const caption = table.querySelector('caption');
        let captionRight = null;
        if (caption && caption.innerText.trim()) {
            const text = document.createRange();
            text.selectNodeContents(caption);
            captionRight = Math.max(...Array.from(text.getClientRects(), (line) => line.right));
        }
        return {
            table: (caption ? caption.innerText : table.innerText).trim().slice(0, 80),
            boxRight: box.getBoundingClientRect().right,
            columnRight: columnRight,
            tableWidth: table.getBoundingClientRect().width,
            columnWidth: column.getBoundingClientRect().width,
            hidesColumns: box.scrollWidth > box.clientWidth + 1,
            marked: getComputedStyle(box).backgroundImage.includes('gradient'),
            captionRight: captionRight,
        };
    });
}"""
# The landing page's answers (its sections titled "1. ...", "2. ...") and its code cells (myst-nb's div.cell,
# input collapsed or not): for each code cell, whether it lies after the first answer's whole section.
LANDING_ORDER = r"""() => {
    const article = document.querySelector('article.bd-article');
    if (!article) return null;
    const answers = Array.from(article.querySelectorAll('section'))
        .filter((section) => { const h = section.querySelector(':scope > h2'); return h && /^\d+\./.test(h.innerText.trim()); });
    const cells = Array.from(article.querySelectorAll('div.cell'));
    if (!answers.length) return {answers: 0, cells: cells.length, after: []};
    const first = answers[0];
    return {
        answers: answers.length,
        cells: cells.length,
        after: cells.map((cell) => !first.contains(cell) && Boolean(first.compareDocumentPosition(cell) & Node.DOCUMENT_POSITION_FOLLOWING)),
    };
}"""
WIDE_WINDOW = {"width": 1400, "height": 900}  # a laptop's browser window, where the issue saw tables cut off
LINKS = "() => Array.from(document.querySelectorAll('a[href]'), (a) => a.href)"
# What a reader sees of the page's content (collapsed code excluded), its title, and stderr output blocks.
VISIBLE_TEXT = "() => (document.querySelector('main') || document.body).innerText"
TITLE = "() => { const h = document.querySelector('main h1, article h1'); return h ? h.innerText : ''; }"
STDERR_OUTPUTS = "() => document.querySelectorAll('.output.stderr, .cell_output .stderr').length"
# A Python warning or traceback printed into a page.
PYTHON_NOISE = re.compile(r"Traceback \(most recent call last\)|\b[A-Z]\w*Warning: |\bwarnings\.warn\(")
# A Jupyter Book's index.html only redirects: <meta http-equiv="Refresh" content="0; url=...">.
REFRESH = re.compile(r'<meta[^>]+http-equiv="refresh"[^>]+url=([^"]+)"', re.IGNORECASE)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output readable
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built book's HTML served on 127.0.0.1 at a free port."""
    html = build_once(tmp_path_factory.getbasetemp()).html
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def crawl(browser, start: str) -> dict[str, dict]:
    """Visit every same-origin HTML page reachable from ``start``; what each page showed."""
    origin = urlparse(start).netloc
    page = browser.new_page()
    outside, script_errors = [], []
    page.route("**/*", lambda route: route.continue_() if urlparse(route.request.url).netloc == origin else (outside.append(route.request.url), route.abort()))
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    seen, queue, report = {start}, deque([start]), {}
    while queue:
        url = queue.popleft()
        source = page.request.get(url)
        redirect = REFRESH.search(source.text())
        if redirect:  # a browser would navigate away at once: take its one link from the source
            report[url] = {"status": source.status, "images": [], "table_rows": [], "links": {urljoin(url, redirect[1].strip())}}
        else:
            response = page.goto(url, wait_until="load")
            report[url] = {
                "status": response.status,
                "images": page.evaluate(DECODED_IMAGES),
                "table_rows": page.evaluate(TABLE_ROWS),
                "number_cells": page.evaluate(NUMBER_CELLS),
                "links": {urldefrag(link)[0] for link in page.evaluate(LINKS) if urlparse(link).netloc == origin},
                "text": page.evaluate(VISIBLE_TEXT),
                "title": page.evaluate(TITLE),
                "stderr": page.evaluate(STDERR_OUTPUTS),
            }
        links = report[url]["links"]
        for link in links:
            if link.endswith(".html") and link not in seen:
                seen.add(link)
                queue.append(link)
    page.close()
    report["_outside"] = outside
    report["_script_errors"] = script_errors
    return report


@pytest.fixture(scope="module")
def visited(browser, site):
    return crawl(browser, urljoin(site, "index.html"))


def pages(visited) -> dict[str, dict]:
    return {url: data for url, data in visited.items() if not url.startswith("_")}


def test_every_page_loads_without_script_errors_or_outside_requests(visited, site):
    loaded = pages(visited)
    expected = ["book/chapters/findings.html", "book/chapters/dataset_statistics.html", "book/chapters/runs.html",
                "book/runs/runs/study1/smoke/abc0.html"]
    for page in expected:
        assert urljoin(site, page) in loaded, f"{page} is not reachable from the index"
    assert all(data["status"] == 200 for data in loaded.values()), {u: d["status"] for u, d in loaded.items()}
    assert visited["_script_errors"] == []
    assert visited["_outside"] == []  # the book needs nothing from the internet


def test_every_chapter_in_the_table_of_contents_renders_with_a_title(visited, site, tmp_path_factory):
    toc = yaml.safe_load((build_once(tmp_path_factory.getbasetemp()).project / "_toc.yml").read_text())
    files = [toc["root"]] + [chapter["file"] for chapter in toc["chapters"]]
    for file in files:
        data = pages(visited).get(urljoin(site, f"{file}.html"))
        assert data is not None, f"{file} (in _toc.yml) is not reachable from the index"
        assert data["status"] == 200 and data["title"].strip(), f"{file}: status {data['status']}, title {data['title']!r}"


def test_no_page_shows_a_python_warning_or_traceback(visited):
    for url, data in pages(visited).items():
        if "text" not in data:  # the index's redirect
            continue
        assert data["stderr"] == 0, f"{url}: {data['stderr']} stderr output block(s) in the reader's view"
        noise = PYTHON_NOISE.search(data["text"])
        assert noise is None, f"{url}: {noise[0]!r} in the page: ...{data['text'][max(0, noise.start() - 200):noise.end() + 200]}..."


def test_every_figure_has_decoded_pixels(visited, site):
    for url, data in pages(visited).items():
        undecoded = [src for src, width in data["images"] if width == 0]
        assert not undecoded, f"{url}: images without pixels: {undecoded}"
    chapter = pages(visited)[urljoin(site, "book/chapters/dataset_statistics.html")]
    assert len(chapter["images"]) >= 3  # the gallery and two histogram figures
    run_page = pages(visited)[urljoin(site, "book/runs/runs/study1/smoke/abc0.html")]
    assert len(run_page["images"]) >= 1


def test_every_table_has_rows(visited, site):
    for url, data in pages(visited).items():
        assert all(rows > 0 for rows in data["table_rows"]), f"{url}: a table without rows {data['table_rows']}"
    assert len(pages(visited)[urljoin(site, "book/chapters/dataset_statistics.html")]["table_rows"]) >= 3
    assert len(pages(visited)[urljoin(site, "book/chapters/runs.html")]["table_rows"]) >= 2


def test_numbers_in_tables_are_right_aligned_and_padded(visited, site):
    checked = 0
    for url, data in pages(visited).items():
        for text, align, padding in data.get("number_cells", []):
            checked += 1
            assert align in ("right", "end"), f"{url}: {text!r} is aligned {align!r}"
            assert padding >= 8, f"{url}: {text!r} has {padding} px of horizontal padding: columns would run together"
    assert checked > 100  # the chapters' tables, glued ones included, and the run index


def test_no_internal_link_is_broken(visited, browser, site):
    targets = set().union(*(data["links"] for data in pages(visited).values()))
    # The links the book's own text makes are among them, and the pages' sources.
    runs_index = pages(visited)[urljoin(site, "book/chapters/runs.html")]["links"]
    assert urljoin(site, "book/runs/runs/study1/smoke/abc1.html") in runs_index
    assert urljoin(site, "book/chapters/runs.html") in pages(visited)[urljoin(site, "book/chapters/findings.html")]["links"]
    assert any("/_sources/" in target for target in targets)
    context = browser.new_context()
    try:
        broken = {target: status for target in sorted(targets) if (status := context.request.get(target).status) != 200}
    finally:
        context.close()
    assert not broken, broken


def test_no_table_reaches_past_its_column_in_a_wide_window(visited, browser, site):
    """At 1,400 px every table fits its column or scrolls inside a box of its own that does, and such a box
    shows that it holds more (many browsers draw no scrollbar until one scrolls) and keeps its caption in view."""
    page = browser.new_page(viewport=WIDE_WINDOW)
    tables = {}
    try:
        for url, data in pages(visited).items():
            if "text" in data:  # not the index's redirect
                page.goto(url, wait_until="load")
                tables[url] = page.evaluate(TABLE_BOXES)
    finally:
        page.close()
    wider_than_column = 0
    for url, found in tables.items():
        for table in found:
            where = f"{url}: table {table['table']!r}"
            assert table["boxRight"] <= table["columnRight"] + 1, f"{where} reaches {table['boxRight'] - table['columnRight']:.0f} px past its column"
            if table["hidesColumns"]:
                assert table["marked"], f"{where} hides columns beyond its box's edge without a shadow marking it"
            if table["captionRight"] is not None:
                assert table["captionRight"] <= table["boxRight"] + 1, f"{where}: its caption runs past the box's edge"
            wider_than_column += table["tableWidth"] > table["columnWidth"]
    # The check is not vacuous: the fabricated run's wide table (and the appendix's) are wider than the column.
    assert wider_than_column >= 1
    run_page = tables[urljoin(site, "book/runs/runs/study1/smoke/abc0.html")]
    assert any(table["hidesColumns"] and table["captionRight"] is not None for table in run_page)


def test_the_landing_page_shows_no_code_cell_before_its_first_answer(visited, browser, site):
    """The book opens on prose and answers: every code cell of the landing page (the page the index
    redirects to) comes after the first study's answer, collapsed or not."""
    landing = next(iter(visited[urljoin(site, "index.html")]["links"]))
    page = browser.new_page()
    try:
        page.goto(landing, wait_until="load")
        order = page.evaluate(LANDING_ORDER)
    finally:
        page.close()
    assert order is not None, f"{landing} has no article column"
    assert order["answers"] == 3, f"{landing}: {order['answers']} answer sections titled '1.', '2.', ... (one per study)"
    assert order["cells"] >= 1  # not vacuous: the page's computing cells exist, at its end
    assert all(order["after"]), f"{landing}: a code cell comes before the end of the first answer"
