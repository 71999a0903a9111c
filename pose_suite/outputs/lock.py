"""One run at a time on an output, from before any model loads.

A run locks every folder it writes files in (its output folder, the
sub-folders of a recursive batch's results and exports, its overlays'
folders) with ``flock`` on the hidden file ``.pose-suite.lock`` in each: a
batch, and any run on Ray (the driver holds the lock, its workers write in
the folder), holds it exclusively; a run of one input shares it and holds
its result's own ``.<name>.run.lock`` exclusively. So two batches into one
folder, a batch and a run of one input into its folder, or two runs of the
same result exclude each other, while runs of different single inputs into
one folder go on side by side. A run refused says which run holds the lock
(its pid and host, which each holder writes in the lock file).

The kernel drops the lock of a process that ends, killed (``kill -9``) or
not, and on NFS the lock is the server's (Linux maps ``flock`` to its
byte-range locks): a lock file left behind is not a lock, and the next run
takes it. No pid is trusted to mean a live run. The last holder removes the
file. Lock files are hidden: never inputs, results or summary rows.

A lock file is opened without following a symbolic link, and must be a
regular file (else the run is refused, naming it). One another user left,
which this user may not write, is locked read-only (its holder's pid
cannot be written then).
"""
import errno
import fcntl
import os
import socket
import stat
import time
from pathlib import Path
from typing import IO, List, Optional, Sequence, Tuple

from pose_suite.errors import OutputError

#: The lock of an output folder.
FOLDER_LOCK = '.pose-suite.lock'
#: Seconds a refused run waits for the holder to have written its pid.
_PID_WAIT_S = 1.0


class OutputLock:
    """The locks a run holds (see the module's docstring); :meth:`release`
    them when the run ends (the kernel does it if the process dies)."""

    def __init__(self) -> None:
        self._held: List[Tuple[Path, IO]] = []
        #: Folders made for the lock, deepest first: removed again if the
        #: run leaves them empty (it failed before writing anything).
        self.made: List[Path] = []

    def take(self, path: Path, exclusive: bool, what: Path) -> None:
        """Lock ``path``, or raise OutputError naming the run that holds it
        (``what``: the output, for the message)."""
        self._held.append((Path(path), _take(Path(path), exclusive, what)))

    def release(self) -> None:
        while self._held:
            _drop(*self._held.pop())
        for folder in sorted(self.made, key=lambda f: len(f.parts),
                             reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty: the run (or another) wrote there


def lock_output(folder: Path, exclusive: bool,
                result: Optional[Path] = None,
                result_lock: Optional[Path] = None) -> OutputLock:
    """:func:`lock_outputs` of the one ``folder``."""
    return lock_outputs([folder], exclusive, result, result_lock)


def lock_outputs(folders: Sequence[Path], exclusive: bool,
                 result: Optional[Path] = None,
                 result_lock: Optional[Path] = None) -> OutputLock:
    """Lock each of the ``folders`` a run writes in (made if missing, and
    removed on release if still empty): ``exclusive`` for a batch or a
    Ray run, else shared, with ``result_lock`` (the lock file of the one
    ``result``) exclusive.

    Raises:
        OutputError: a folder cannot be made or written, a lock file is no
        regular file, or another run holds a lock that excludes this one
        (one line, naming its pid).
    """
    lock = OutputLock()
    folder = None
    try:
        for folder in dict.fromkeys(Path(f) for f in folders):
            _lock_folder(lock, folder, exclusive)
        if result_lock is not None:
            lock.take(result_lock, True, result)
    except OSError as exc:
        lock.release()
        raise OutputError(f'cannot write to output folder {folder}: '
                          f'{exc.strerror or exc}') from None
    except BaseException:
        lock.release()
        raise
    return lock


def _lock_folder(lock: OutputLock, folder: Path, exclusive: bool) -> None:
    """Make ``folder`` (noting in ``lock.made`` what was missing) and take
    its lock; a folder an ending run removed meanwhile is made again."""
    missing = folder.absolute()
    while not missing.exists() and missing.parent != missing:
        if missing not in lock.made:
            lock.made.append(missing)
        missing = missing.parent
    for attempt in range(3):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lock.take(folder / FOLDER_LOCK, exclusive, folder)
            return
        except FileNotFoundError:
            if attempt == 2:  # an ending run removed it, again
                raise


def _open(path: Path) -> IO:
    """``path`` opened to be locked: never through a symbolic link, a
    regular file only; read-only where another user's file may not be
    written (a read-only ``flock`` holds all the same on Linux)."""
    common = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | common,
                     0o666)
        mode = 'a+'
    except PermissionError as exc:  # EACCES, EPERM
        try:
            fd = os.open(path, os.O_RDONLY | common)
        except FileNotFoundError:
            raise exc from None  # no file, and the folder is not ours
        mode = 'r'
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise OutputError(_not_a_file(path)) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OutputError(_not_a_file(path))
    return os.fdopen(fd, mode, encoding='utf-8')


def _not_a_file(path: Path) -> str:
    return (f'{path} is not a regular file (a link, folder or other), where '
            'the run keeps its lock: remove it (nothing was analysed)')


def _take(path: Path, exclusive: bool, what: Path) -> IO:
    """Open and flock ``path`` without waiting; write this run's pid."""
    while True:
        try:
            handle = _open(path)
        except FileNotFoundError:
            raise  # its folder, emptied, was removed: made again
        except OSError as exc:
            raise OutputError(f'cannot write to output folder {path.parent}: '
                              f'{exc.strerror or exc}') from None
        try:
            fcntl.flock(handle, (fcntl.LOCK_EX if exclusive else
                                 fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise OutputError(
                f'another run ({_holders(path)}) is writing {what}; wait for '
                'it to end or choose another output') from None
        except OSError as exc:
            handle.close()
            raise OutputError(f'cannot lock {path}: '
                              f'{exc.strerror or exc}') from None
        if _is_linked(handle, path):
            _sign(handle, exclusive)
            return handle
        handle.close()  # its last holder removed it as we opened it


def _is_linked(handle: IO, path: Path) -> bool:
    """Whether ``handle`` is still the file named ``path``."""
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _sign(handle: IO, exclusive: bool) -> None:
    """Write ``<pid> <host>`` in the lock file: alone when held
    exclusively, else as one more line (an append of one short line is
    whole); nothing in a file this user may not write."""
    if not handle.writable():
        return
    if exclusive:
        handle.truncate(0)
    handle.write(f'{os.getpid()} {socket.gethostname()}\n')
    handle.flush()


def _holders(path: Path) -> str:
    """Who holds ``path``, from what the holders wrote in it: ``pid 123 on
    host``; the lines of processes of this host that ended are left out."""
    deadline = time.monotonic() + _PID_WAIT_S
    while True:
        holders = _live(_read_signatures(path))
        if holders or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # taken, its pid not written yet
    if not holders:
        return 'pid unknown'
    here = socket.gethostname()
    named = [f'pid {pid}' + ('' if host == here else f' on {host}')
             for pid, host in holders[:3]]
    return ', '.join(named) + (', ...' if len(holders) > 3 else '')


def _read_signatures(path: Path) -> List[Tuple[int, str]]:
    try:
        text = path.read_text(encoding='utf-8', errors='replace')
    except OSError:
        return []
    signatures = []
    for line in text.splitlines():
        pid, _, host = line.partition(' ')
        if pid.isdigit():
            signatures.append((int(pid), host.strip()))
    return signatures


def _live(signatures: List[Tuple[int, str]]) -> List[Tuple[int, str]]:
    """The signatures but those of ended processes of this host (another
    host's cannot be asked)."""
    here = socket.gethostname()
    live = []
    for pid, host in dict.fromkeys(signatures):
        if host == here:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            except OSError:
                pass  # another user's process: alive
        live.append((pid, host))
    return live


def _drop(path: Path, handle: IO) -> None:
    """Let go of a lock; its last holder (the one that can take it
    exclusively) removes the file first, so none is left behind."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass  # others hold it still (and this run's hold is gone)
    else:
        if _is_linked(handle, path):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass  # another user's, in a folder with the sticky bit
    finally:
        handle.close()
