"""The documentation site (docs/, mkdocs.yml): it builds with
``mkdocs build --strict``, and that build fails on what makes a site rot (a
link to a page that is not there, an anchor no page has, a page removed
from the docs or left out of the nav); the README stays short and its
links land; and in Chromium the site shows its navigation, follows a nav
link and finds a word with its search box.

Set ``DOCS_SCREENSHOT=PATH`` to keep a screenshot of the search results.
"""
import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import serve_folder
from test_report import browser  # noqa: F401 - the same Chromium

ROOT = Path(__file__).resolve().parent.parent
#: The README's limit (issue 41): what it is, install, run, what comes
#: out, eight keys, Python, where to read more; the rest is in docs/.
README_MAX_LINES = 200


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` of the project at ``root`` into ``site``,
    run from ``root`` (where benchmarks.md's snippet path starts)."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING='1')
    return subprocess.run(
        [sys.executable, '-m', 'mkdocs', 'build', '--strict',
         '--config-file', str(root / 'mkdocs.yml'), '--site-dir', str(site)],
        cwd=root, env=env, capture_output=True, text=True, timeout=300)


def nav_pages() -> list:
    """The .md files mkdocs.yml's nav names, in order."""
    return re.findall(r':\s+(\S+\.md)\s*$', (ROOT / 'mkdocs.yml').read_text(),
                      re.M)


@pytest.fixture(scope='module')
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp('docs') / 'site'
    result = build(ROOT, site)
    assert result.returncode == 0, result.stderr
    assert 'WARNING' not in result.stderr, result.stderr
    return site


def page_html(site: Path, page: str) -> str:
    name = page[:-len('.md')]
    folder = site if name == 'index' else site / name
    return (folder / 'index.html').read_text(encoding='utf-8')


def test_site_builds_strict_with_every_page(site):
    pages = nav_pages()
    on_disk = sorted(p.relative_to(ROOT / 'docs').as_posix()
                     for p in (ROOT / 'docs').rglob('*.md'))
    assert sorted(pages) == on_disk
    for page in pages:
        assert '<h1' in page_html(site, page), page
    # benchmarks.md includes benchmarks/RESULTS.md when the site is built.
    results = (ROOT / 'benchmarks' / 'RESULTS.md').read_text()
    first_heading = re.search(r'^## (.+)$', results, re.M).group(1)
    assert first_heading.split()[0] in page_html(site, 'benchmarks.md')
    assert 'id="runtimes"' in page_html(site, 'benchmarks.md')
    for picture in ('report_example.png', 'overlay_example.jpg',
                    'movement_example.png'):
        assert (site / 'img' / picture).stat().st_size > 10_000, picture


def copy_project(tmp_path: Path) -> Path:
    """What the site is built from, copied: mkdocs.yml, docs/, the README
    (its home page) and the benchmark results it includes."""
    root = tmp_path / 'project'
    shutil.copytree(ROOT / 'docs', root / 'docs')
    shutil.copy(ROOT / 'mkdocs.yml', root / 'mkdocs.yml')
    shutil.copy(ROOT / 'README.md', root / 'README.md')
    (root / 'benchmarks').mkdir()
    shutil.copy(ROOT / 'benchmarks' / 'RESULTS.md', root / 'benchmarks')
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def break_link(root):
    edit(root / 'docs' / 'speed.md', '(gpu.md)', '(gpu-setup.md)')
    return "'gpu-setup.md'"


def break_anchor(root):
    edit(root / 'docs' / 'speed.md', 'benchmarks.md#runtimes',
         'benchmarks.md#runtime')
    return "'#runtime'"


def break_readme_link(root):
    edit(root / 'README.md', '(docs/gpu.md)', '(docs/gpus.md)')
    return "'gpus.md'"


def remove_page(root):
    (root / 'docs' / 'gpu.md').unlink()
    return "'gpu.md'"


def leave_out_of_nav(root):
    (root / 'docs' / 'extra.md').write_text('# Extra\n')
    return 'extra.md'


def lose_benchmark_results(root):
    (root / 'benchmarks' / 'RESULTS.md').unlink()
    return 'RESULTS.md'


@pytest.mark.parametrize('damage', [break_link, break_anchor, break_readme_link,
                                    remove_page,
                                    leave_out_of_nav, lose_benchmark_results])
def test_strict_build_fails_on_a_broken_site(tmp_path, damage):
    """The guard itself: the same build of a copy fails, naming what is
    wrong, once the copy is damaged; and builds before that."""
    root = copy_project(tmp_path)
    intact = build(root, tmp_path / 'intact')
    assert intact.returncode == 0, intact.stderr
    named = damage(root)
    result = build(root, tmp_path / 'site')
    assert result.returncode != 0, result.stderr
    assert named in result.stderr, result.stderr


def test_what_github_shows_lands(site):
    """On GitHub the Markdown is read as it is: docs/index.md (on the
    site: the README) lists every page, and it and the github-only blocks
    (dropped from the site) link only to files that exist."""
    index = (ROOT / 'docs' / 'index.md').read_text()
    for page in nav_pages():
        assert f']({page})' in index or page == 'index.md', page
    blocks = [index] + [
        block for page in (ROOT / 'docs').glob('*.md')
        for block in re.findall(r'<!-- github-only -->(.*?)'
                                r'<!-- /github-only -->', page.read_text(),
                                re.S)]
    assert len(blocks) >= 2
    for block in blocks:
        for link in re.findall(r'\]\(([^)\s#]+)', block):
            assert (ROOT / 'docs' / link).resolve().is_file(), link
    assert 'On GitHub' not in page_html(site, 'benchmarks.md')
    assert 'readers on GitHub' not in page_html(site, 'index.md')


def test_readme_is_short_and_its_links_land(site):
    readme = (ROOT / 'README.md').read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES
    links = re.findall(r'\]\(([^)\s]+)\)', readme)
    local = [link for link in links if '://' not in link]
    assert len(local) > 20
    for link in local:
        path, _, anchor = link.partition('#')
        assert (ROOT / path).exists(), link
        if anchor:
            page = Path(path).relative_to('docs').as_posix()
            assert f'id="{anchor}"' in page_html(site, page), link
    # The site's home page is the README (docs/hooks/readme_home.py), its
    # links made site-relative.
    home = page_html(site, 'index.md')
    text = html.unescape(re.sub(r'<[^>]+>', '', home))
    for heading in re.findall(r'^#+ (.*)$', readme, re.M):
        assert heading.replace('`', '') in text, heading
    separators = len(re.findall(r'^\|[-|]+\|$', readme, re.M))
    assert home.count('<tr>') == readme.count('\n|') - separators
    assert 'href="install/"' in home and 'src="img/report_example.png"' in home
    # Every page of the site is reachable from the README.
    for page in nav_pages():
        assert f'docs/{page}' in readme or page in ('index.md',
                                                    'benchmarks.md'), page


@pytest.fixture
def served(site):
    """The built site on http://127.0.0.1:PORT (its search index is
    fetched, which a file:// page cannot do)."""
    with serve_folder(site) as url:
        yield url


def heading(page) -> str:
    """The page's title as shown, without its permalink sign."""
    return page.locator('h1').first.inner_text().rstrip('¶').strip()


def test_site_in_a_browser(served, browser):
    """What a newcomer does: sees the navigation, clicks a page, searches
    a word; nothing is fetched from anywhere but the site."""
    page = browser.new_page(viewport={'width': 1400, 'height': 900})
    requests = []
    page.on('request', lambda request: requests.append(request.url))
    page.goto(served + '/')
    assert heading(page) == 'Pose analysis suite'
    nav = page.locator('nav.md-nav--primary')
    titles = [t.strip() for t in nav.locator('a.md-nav__link').all_inner_texts()]
    for title in ('Install', 'Configuration', 'Output format', 'GPU',
                  'What goes wrong', 'Results in Python', 'Development'):
        assert title in titles, titles

    nav.locator('a.md-nav__link', has_text='What goes wrong').click()
    page.wait_for_url('**/troubleshooting/')
    assert heading(page) == 'What goes wrong, and what happens then'

    # The search box reads keystrokes (a fill() alone searches nothing).
    page.locator('input.md-search__input').click()
    page.keyboard.type('wheelhouse')
    found = page.locator('.md-search-result__item > a')
    found.first.wait_for(timeout=30_000)
    hrefs = [found.nth(i).get_attribute('href') for i in range(found.count())]
    assert '/install/' in hrefs[0], hrefs
    assert 'make wheelhouse' in found.first.inner_text()
    if os.environ.get('DOCS_SCREENSHOT'):
        page.screenshot(path=os.environ['DOCS_SCREENSHOT'])

    found.first.click()
    page.wait_for_url('**/install/**')
    assert heading(page) == 'Install and run: two commands'
    assert 'A machine without internet' in page.locator('article').inner_text()
    assert all(url.startswith(served) for url in requests), \
        [url for url in requests if not url.startswith(served)]
    page.close()
