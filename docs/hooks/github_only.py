"""mkdocs hook: text for readers of the Markdown on GitHub, left out of the
site.

A page's ``<!-- github-only -->`` ... ``<!-- /github-only -->`` block says
what GitHub cannot show (a page the site fills in when it is built, e.g.
benchmarks.md's included results) and links outside ``docs/``; the site
drops the block before it checks links.
"""
import re

BLOCK = re.compile(r'<!-- github-only -->.*?<!-- /github-only -->\n?', re.S)


def on_page_markdown(markdown, page, config, files):
    return BLOCK.sub('', markdown)
