"""mkdocs hook: the site's home page is the project's README.md.

``docs/index.md`` holds only a note; when the site is built its Markdown is
replaced by the README's, with the README's links into ``docs/`` made
relative to the site (``docs/install.md`` -> ``install.md``,
``docs/img/x.png`` -> ``img/x.png``). One text, read on GitHub and on the
site; ``--strict`` checks its links like any page's.
"""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / 'README.md'


def site_markdown(readme: str) -> str:
    """The README's Markdown with its ``](docs/...)`` links site-relative."""
    return re.sub(r'\]\(docs/', '](', readme)


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == 'index.md':
        return site_markdown(README.read_text(encoding='utf-8'))
    return markdown
