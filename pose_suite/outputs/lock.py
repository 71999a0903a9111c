"""One run at a time on an output, from before any model loads.

A run locks its output folder (the folder of its result file, for one
input) with ``flock`` on the hidden file ``.pose-suite.lock`` there: a
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
"""
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import IO, List, Optional, Tuple

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
        for folder in self.made:
            try:
                folder.rmdir()
            except OSError:
                break  # not empty: the run (or another) wrote there


def lock_output(folder: Path, exclusive: bool,
                result: Optional[Path] = None,
                result_lock: Optional[Path] = None) -> OutputLock:
    """Lock the output ``folder`` (made if missing, and removed on release
    if still empty): ``exclusive`` for a batch or a Ray run, else shared,
    with ``result_lock`` (the lock file of the one ``result``) exclusive.

    Raises:
        OutputError: the folder cannot be made or written, or another run
        holds a lock that excludes this one (one line, naming its pid).
    """
    folder = Path(folder)
    lock = OutputLock()
    missing = folder.absolute()
    while not missing.exists() and missing.parent != missing:
        lock.made.append(missing)
        missing = missing.parent
    try:
        for attempt in range(3):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                lock.take(folder / FOLDER_LOCK, exclusive, folder)
                break
            except FileNotFoundError:
                if attempt == 2:  # an ending run removed it, again
                    raise
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


def _take(path: Path, exclusive: bool, what: Path) -> IO:
    """Open and flock ``path`` without waiting; write this run's pid."""
    while True:
        try:
            handle = open(path, 'a+', encoding='utf-8')
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
    whole)."""
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
            path.unlink(missing_ok=True)
    finally:
        handle.close()
