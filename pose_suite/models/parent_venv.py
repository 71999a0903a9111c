"""``make install TORCH=system`` where ``python3`` is itself a virtual
environment's Python (as on many GPU images, ``/opt/.../.venv/bin/python3``).

``python -m venv --system-site-packages`` gives the new environment the
*base* interpreter's packages (pyvenv.cfg's ``home``), not those of the
environment it was made from: the torch installed there is not found. So,
run with that parent Python, this writes a ``.pth`` file into the new
environment that adds the parent's package folders with
``site.addsitedir`` (which also reads their own ``.pth`` files, so a chain
of environments, each made from the last, is followed). The new
environment's own packages still come first.

Standard library only: the parent Python may have nothing but torch.

Usage: ``PARENT_PYTHON -m pose_suite.models.parent_venv NEW_VENV``.
"""
import site
import subprocess
import sys
from pathlib import Path
from typing import List

#: The file written into the new environment's site-packages.
PTH_NAME = 'pose_suite_parent_venv.pth'


def is_venv() -> bool:
    """Whether this Python runs inside a virtual environment."""
    return sys.prefix != sys.base_prefix


def own_site_dirs() -> List[str]:
    """This Python's package folders that a venv made from it with
    ``--system-site-packages`` would not see: its site-packages and the
    folders its ``.pth`` files added (a parent of its own, linked the same
    way), the base interpreter's left out (the new venv has them)."""
    if not is_venv():
        return []
    base = set(site.getsitepackages([sys.base_prefix, sys.base_exec_prefix]))
    seen = []
    for entry in [*site.getsitepackages(), *sys.path]:
        path = Path(entry)
        if entry in base or entry in seen or not path.is_dir() or \
                path.name not in ('site-packages', 'dist-packages'):
            continue
        seen.append(entry)
    return seen


def site_packages_of(venv: Path) -> Path:
    """The new environment's purelib folder (asked of its Python)."""
    answer = subprocess.run(
        [str(venv / 'bin' / 'python'), '-c',
         'import sysconfig; print(sysconfig.get_path("purelib"))'],
        capture_output=True, text=True, check=True)
    return Path(answer.stdout.strip())


def link(venv: Path) -> List[str]:
    """Write (or remove, for a parent that is no venv) the ``.pth`` of
    ``venv`` naming this Python's package folders. Returns them."""
    folders = own_site_dirs()
    target = site_packages_of(Path(venv)) / PTH_NAME
    if not folders:
        target.unlink(missing_ok=True)
        return []
    # One line each: `import` lines of a .pth are run by site.py.
    target.write_text(''.join(
        f'import site; site.addsitedir({folder!r})\n'
        for folder in folders))
    return folders


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    folders = link(Path(args[0]))
    if folders:
        print(f'{args[0]} also sees the packages of {sys.prefix} (a virtual '
              f'environment): {", ".join(folders)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
