"""Publishing a file whole or not at all, readable as any new file of the
user's.

A file is written under a temporary name in its folder, flushed to disk and
renamed over its final name, so a reader sees the previous version or the
new one, never half of one. The temporary file is created with mode 0666
less the umask, as ``open()`` creates files: ``tempfile.mkstemp`` would
make it 0600 and the published result readable by its creator only.
"""
import contextlib
import ctypes
import os
import secrets
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_write(target: Path, mode: str = 'w', **open_kwargs
                 ) -> Iterator[IO]:
    """Open a new file to become ``target``; on leaving the block without
    an exception it replaces ``target``, otherwise it is removed.

    Args:
        mode: ``'w'`` or ``'wb'``; ``open_kwargs`` go to ``open`` (encoding,
            newline).
    Raises:
        OSError: the folder cannot be written; ``target`` is untouched.
    """
    target = Path(target)
    while True:
        temporary = temporary_path(target, secrets.token_hex(4))
        try:
            descriptor = os.open(temporary,
                                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(descriptor, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(target.parent)


def temporary_path(target: Path, token: str) -> Path:
    """The name ``target`` is written under before it is published:
    ``.<name>.<token>.tmp`` beside it (``token``: 8 hex digits)."""
    return Path(target).with_name(f'.{Path(target).name}.{token}.tmp')


def sync_filesystem(path: Path) -> None:
    """Write every file of the filesystem that holds ``path`` to disk, in
    one call (Linux's ``syncfs``; elsewhere ``sync``): many new files made
    durable for the price of one fsync, not one each."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        os.sync()
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        if syncfs(descriptor) != 0:
            os.sync()
    finally:
        os.close(descriptor)


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the filesystem allows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


#: What a spreadsheet takes for the start of a formula (OWASP's list).
_FORMULA_STARTS = ('=', '+', '-', '@', '\t', '\r')


def spreadsheet_cell(value):
    """``value`` for a CSV cell that a spreadsheet opens as text: a string
    that would start a formula (a file named ``=HYPERLINK(...).mp4``)
    gets a leading ``'``; numbers are kept."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
