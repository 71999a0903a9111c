"""What the documentation says, read from its Markdown: the commands a user
would paste, every ``--flag`` it names, its configuration tables and its
JSON snippets. Plain text in, plain records out; nothing here knows the
project's parsers (:mod:`doc_commands` checks the records against them).

Every function takes the pages as ``{name: text}`` (``name`` is what a
message calls the page, e.g. ``docs/configuration.md``) so that the
checks run the same on the real pages and on a few synthetic lines.
"""
import bisect
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

#: Fence languages whose lines are shell commands (plain fences too).
SHELL_LANGUAGES = {'', 'bash', 'sh', 'shell', 'console', 'zsh'}
#: What ``# needs: ...`` may say: where a command cannot run here.
NEEDS = {'gpu', 'cluster'}
FLAG = re.compile(r'(?<![\w/-])--[A-Za-z][A-Za-z0-9_-]*')
#: A shell word that only says "and more of the same" in a command.
ELLIPSES = {'...', '…'}


@dataclass
class Block:
    """A fenced code block: its language, page, and its lines with their
    line numbers (1-based, in the page)."""
    language: str
    page: str
    lines: List[Tuple[int, str]]


@dataclass
class Command:
    """One command line as a user would paste it.

    ``words``: its shell words, the prompt (``$``), environment
    assignments (``X=1``) and the trailing comment gone; ``needs``: what
    its ``# needs: ...`` comment says (``None``: runs anywhere);
    ``synopsis``: a usage line with ``[optional]`` parts, whose flags are
    checked but which is not parsed as a command line."""
    where: str
    words: List[str]
    needs: Optional[str]
    synopsis: bool
    comment: str = ''


def pages_of(root: Path) -> Dict[str, str]:
    """README.md and every docs/**/*.md of ``root``, by relative name."""
    paths = [root / 'README.md'] + sorted((root / 'docs').rglob('*.md'))
    return {str(path.relative_to(root)): path.read_text(encoding='utf-8')
            for path in paths if path.is_file()}


def blocks_of(page: str, text: str
              ) -> Tuple[List[Block], List[Tuple[int, str]]]:
    """The fenced blocks of ``text`` and the lines outside them (prose)."""
    blocks, prose, current, fence = [], [], None, ''
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if current is None and re.match(r'(`{3,}|~{3,})', stripped):
            fence = re.match(r'(`{3,}|~{3,})', stripped).group(1)
            language = stripped[len(fence):].strip().split(' ')[0]
            current = Block(language.strip('{}.').lower(), page, [])
        elif current is not None and stripped.startswith(fence) and \
                stripped.strip(fence[0]) == '':
            blocks.append(current)
            current = None
        elif current is not None:
            current.lines.append((number, line))
        else:
            prose.append((number, line))
    if current is not None:
        blocks.append(current)
    return blocks, prose


def code_spans(prose: List[Tuple[int, str]]) -> List[Tuple[int, str]]:
    """The inline code (`...`, ``...``) of prose lines, with line numbers
    (a span broken over two lines is joined)."""
    spans, text, starts, numbers = [], '', [], []
    for number, line in prose:
        starts.append(len(text))
        numbers.append(number)
        text += line + '\n'
    for match in re.finditer(r'(`+)(.+?)\1', text, re.S):
        number = numbers[bisect.bisect_right(starts, match.start()) - 1]
        spans.append((number, ' '.join(match.group(2).split())))
    return spans


def _split(line: str) -> Tuple[List[str], str]:
    """Shell words of ``line`` and its trailing comment (without ``#``)."""
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split, lexer.commenters = True, ''
    words, comment = [], ''
    try:
        for word in lexer:
            if word.startswith('#'):
                comment = line[line.index(' #') + 2 if ' #' in line
                               else line.index('#') + 1:]
                break
            words.append(word)
    except ValueError:                     # an unclosed quote: not a command
        return [], ''
    return words, comment.strip()


def command_lines(block: Block) -> List[Tuple[int, str]]:
    """The lines of a shell block, backslash continuations joined, comment
    lines and (``console``) output lines left out."""
    joined, pending, start = [], '', 0
    for number, line in block.lines:
        if not pending:
            start = number
        if block.language == 'console' and not pending:
            if not line.lstrip().startswith('$ '):
                continue
        if line.rstrip().endswith('\\'):
            pending += line.rstrip()[:-1] + ' '
            continue
        joined.append((start, pending + line))
        pending = ''
    if pending:
        joined.append((start, pending))
    return [(n, line) for n, line in joined
            if line.strip() and not line.lstrip().startswith('#')]


def parse_command(where: str, line: str) -> List[Command]:
    """The commands of one shell line (split at ``&&``, ``;``, ``|``)."""
    words, comment = _split(line.strip())
    if words[:1] == ['$']:
        words = words[1:]
    needs = None
    match = re.search(r'needs:\s*([\w-]+)', comment)
    if match:
        needs = match.group(1)
    commands, current = [], []
    for word in words + [';']:
        if word.endswith(';') and word != ';':
            current.append(word[:-1])
            word = ';'
        if word in {';', '&&', '||', '|', '&'}:
            while current and re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*=\S*',
                                           current[0]):
                current = current[1:]
            if current[:1] == ['sudo']:
                current = current[1:]
            if current:
                synopsis = any(w.startswith('[') or w.endswith(']')
                               for w in current)
                commands.append(Command(
                    where, [w for w in current if w not in ELLIPSES],
                    needs, synopsis, comment))
            current = []
        else:
            current.append(word)
    return commands


def shell_commands(pages: Dict[str, str], is_command) -> List[Command]:
    """Every command of the pages' shell blocks, and every inline code
    span that is a command (``is_command(words)`` says which first words
    make one: a block's line that is not a command is output or a file
    listing)."""
    commands = []
    for page, text in pages.items():
        blocks, prose = blocks_of(page, text)
        for block in blocks:
            if block.language not in SHELL_LANGUAGES:
                continue
            for number, line in command_lines(block):
                for command in parse_command(f'{page}:{number}', line):
                    if is_command(command.words):
                        commands.append(command)
        for number, span in code_spans(prose):
            for command in parse_command(f'{page}:{number}', span):
                if is_command(command.words, inline=True):
                    commands.append(command)
    return commands


def flags_named(pages: Dict[str, str]) -> Dict[str, List[str]]:
    """Every ``--flag`` written anywhere in the pages (prose, code spans,
    every block), with where: ``{flag: ['page:line', ...]}``. A ``--a=b``
    names ``--a``."""
    found: Dict[str, List[str]] = {}
    for page, text in pages.items():
        for number, line in enumerate(text.splitlines(), 1):
            for flag in FLAG.findall(line):
                found.setdefault(flag, []).append(f'{page}:{number}')
    return found


def key_tables(page: str, text: str
               ) -> List[Tuple[str, List[str], Optional[str]]]:
    """The rows of every table whose first header cell is ``key``:
    ``(where, [backticked names in the first cell], the cell of the
    column headed ``default``, None without one)``."""
    rows, column, lines = [], None, text.splitlines()
    for number, line in enumerate(lines, 1):
        cells = _cells(line)
        if cells is None:
            column = None
            continue
        if cells and cells[0].lower() == 'key' and number < len(lines) and \
                re.fullmatch(r'\|?[\s:|-]+\|?', lines[number].strip()):
            headers = [cell.lower() for cell in cells]
            column = headers.index('default') if 'default' in headers else -1
            continue
        if column is not None and not re.fullmatch(r'[\s:-]*',
                                                   ''.join(cells)):
            names = re.findall(r'`([^`]+)`', cells[0])
            cell = cells[column] if 0 <= column < len(cells) else None
            rows.append((f'{page}:{number}', names, cell))
    return rows


def _cells(line: str) -> Optional[List[str]]:
    """A Markdown table row's cells, or None for a line outside a table."""
    line = line.strip()
    if not line.startswith('|'):
        return None
    inner = line[1:-1] if line.endswith('|') else line[1:]
    # A | inside inline code (`a|b`) does not end a cell.
    parts, cell, in_code = [], '', False
    for char in inner:
        if char == '`':
            in_code = not in_code
        if char == '|' and not in_code:
            parts.append(cell.strip())
            cell = ''
        else:
            cell += char
    return parts + [cell.strip()]


def table_default(cell: str):
    """A default cell's value: its first inline code (or the whole cell)
    read as JSON, else taken as a string (`output/`, `auto`)."""
    match = re.search(r'`([^`]*)`', cell)
    text = match.group(1) if match else cell.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


#: Fence languages whose blocks hold JSON (``jsonc``/``json5``: with
#: ``//`` comments).
JSON_LANGUAGES = {'json', 'jsonc', 'json5'}
#: The mark, on a line just before a ``json`` block, of an excerpt that is
#: not JSON on purpose.
NOT_JSON = '<!-- not-json -->'


def _json_body(block: Block) -> str:
    """A block's text with ``...`` lines, ``//`` comments and the trailing
    commas they leave dropped."""
    body = '\n'.join(line for _, line in block.lines)
    body = re.sub(r'^\s*(\.\.\.|…),?\s*$', '', body, flags=re.M)
    body = re.sub(r'(?m)\s//.*$|^\s*//.*$', '', body)
    return re.sub(r',(\s*[}\]])', r'\1', body)


def json_snippets(pages: Dict[str, str]) -> List[Tuple[str, object, str]]:
    """Every JSON object of a ``json``/``jsonc`` block, of a plain or
    ``text`` block that starts with ``{``, or of inline code that is one
    (`{"executor": "ray"}`): ``(where, parsed object, the prose just
    before the block; '' inline)``. ``//`` comments and ``...`` lines are
    dropped first; a block that still does not parse is skipped (a
    ``json`` one: :func:`broken_json_blocks` says so)."""
    snippets = []
    for page, text in pages.items():
        blocks, prose = blocks_of(page, text)
        lines = text.splitlines()
        for number, span in code_spans(prose):
            if span.startswith('{'):
                try:
                    value = json.loads(span)
                except ValueError:
                    continue
                # (no prose: inline, an object is a config snippet only
                # by its keys; `{"type": "none"}` is a key's value)
                snippets.append((f'{page}:{number}', value, ''))
        for block in blocks:
            if not block.lines:
                continue
            body = '\n'.join(line for _, line in block.lines)
            if block.language not in JSON_LANGUAGES and not (
                    block.language in {'', 'text'} and
                    body.lstrip().startswith('{')):
                continue
            try:
                value = json.loads(_json_body(block))
            except ValueError:
                continue
            first = block.lines[0][0]
            before = '\n'.join(lines[max(0, first - 5):first - 1])
            snippets.append((f'{page}:{first}', value, before))
    return snippets


def broken_json_blocks(pages: Dict[str, str]) -> List[str]:
    """Every ``json`` (``jsonc``, ``json5``) block that is not JSON, its
    ``...`` lines and ``//`` comments dropped, and not marked
    :data:`NOT_JSON` on a line of the three before it: one problem each
    (a user pasting it into config.json would get an error)."""
    problems = []
    for page, text in pages.items():
        lines = text.splitlines()
        for block in blocks_of(page, text)[0]:
            if block.language not in JSON_LANGUAGES or not block.lines:
                continue
            fence = block.lines[0][0] - 1           # the fence's line
            if any(NOT_JSON in line
                   for line in lines[max(0, fence - 4):fence - 1]):
                continue
            try:
                json.loads(_json_body(block))
            except ValueError as exc:
                problems.append(
                    f'{page}:{fence}: a {block.language} block that is not '
                    f'JSON ({exc}): make it JSON, or mark it {NOT_JSON}')
    return problems
