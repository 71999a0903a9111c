"""A real two-node Ray cluster for the tests, in a network namespace with
only ``lo`` up: Ray's servers listen on every interface whatever
``--node-ip-address`` says, so the namespace is what keeps them on loopback.
The cluster uses token authentication (``RAY_AUTH_MODE=token``)."""
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


PORT = 6379  # the namespace's own port space
TESTS = Path(__file__).resolve().parent


def why_no_network_namespace():
    """Why a loopback-only network namespace cannot be made here (None when
    it can): Ray must never reach past loopback, so without one these tests
    do not run."""
    if os.geteuid() != 0:
        return 'Ray tests need root, for a loopback-only network namespace'
    if shutil.which('ip') is None:
        return 'Ray tests need `ip` (iproute2) for a network namespace'
    name = f'pose-suite-check-{os.getpid()}'
    made = subprocess.run(['ip', 'netns', 'add', name], capture_output=True,
                          text=True)
    if made.returncode != 0:
        return ('Ray tests need a network namespace, and `ip netns add` '
                f'failed: {made.stderr.strip()[:200]}')
    subprocess.run(['ip', 'netns', 'delete', name], capture_output=True)
    return None


#: Why the Ray tests cannot run here (None: they can).
NO_NAMESPACE = why_no_network_namespace()


def _sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check)


def _processes():
    """(pid, parent pid, command line) of every process (from /proc)."""
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
            cmdline = (entry / 'cmdline').read_bytes().replace(b'\0', b' ')
        except OSError:
            continue  # ended meanwhile
        parent = int(stat.rsplit(')', 1)[1].split()[1])
        yield int(entry.name), parent, cmdline.decode(errors='replace')


def _command_lines() -> dict:
    return {pid: cmdline for pid, _, cmdline in _processes()}


def _descendants(pid: int) -> list:
    children = {}
    for child, parent, _ in _processes():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Cluster:
    """A Ray head (2 CPUs) and a second node (1 CPU, resource
    ``second_node``) in the network namespace ``ns``."""

    def __init__(self, ns: str, env: dict, temp_dir: str):
        self.ns, self.env, self.temp_dir = ns, env, temp_dir
        self.address = f'127.0.0.1:{PORT}'
        ray = str(Path(sys.executable).parent / 'ray')
        common = ['--node-ip-address=127.0.0.1', '--disable-usage-stats',
                  '--block']
        self.head = self.popen(
            ray, 'start', '--head', f'--port={PORT}', '--num-cpus=2',
            '--include-dashboard=false', f'--temp-dir={temp_dir}', *common)
        self.wait_for_cpus(2)
        self.node2 = self.popen(
            ray, 'start', f'--address={self.address}', '--num-cpus=1',
            '--resources={"second_node": 1}', *common)
        self.wait_for_cpus(3)

    def popen(self, *args, **kwargs):
        kwargs.setdefault('stdout', subprocess.DEVNULL)
        kwargs.setdefault('stderr', subprocess.DEVNULL)
        return subprocess.Popen(['ip', 'netns', 'exec', self.ns, *args],
                                env=self.env, start_new_session=True,
                                **kwargs)

    def run(self, *args, timeout=900):
        return subprocess.run(['ip', 'netns', 'exec', self.ns, *args],
                              env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def wait_for_cpus(self, cpus: int) -> None:
        script = ('import ray; ray.init(address="%s", logging_level="ERROR");'
                  'print(ray.cluster_resources().get("CPU", 0))'
                  % self.address)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            result = self.run(sys.executable, '-c', script, timeout=120)
            if result.returncode == 0 and \
                    float(result.stdout.split()[-1]) >= cpus:
                return
            time.sleep(1)
        raise RuntimeError(f'the test cluster did not reach {cpus} CPUs')

    def kill_node2(self) -> None:
        """The second node dies at once: its ``ray start``, raylet and
        worker processes get SIGKILL."""
        for pid in [self.node2.pid, *_descendants(self.node2.pid)]:
            os.kill(pid, signal.SIGKILL)
        self.node2.wait()


def namespace_pids(ns: str) -> list:
    """The processes still running in network namespace ``ns``."""
    return _sh('ip', 'netns', 'pids', ns, check=False).stdout.split()


def remove_stale_namespaces(prefix: str) -> list:
    """Delete the namespaces ``{prefix}-{pid}-{hex}`` whose test process
    (``pid``) is gone and that hold no process: left by a run killed with
    SIGKILL, which no ``finally`` outlives. Returns their names."""
    listed = _sh('ip', 'netns', 'list', check=False).stdout.split('\n')
    removed = []
    for name in (line.split()[0] for line in listed if line.strip()):
        rest = name[len(prefix) + 1:].split('-') \
            if name.startswith(prefix + '-') else []
        if len(rest) != 2 or not rest[0].isdigit() or alive(int(rest[0])) \
                or namespace_pids(name):
            continue
        _sh('ip', 'netns', 'delete', name, check=False)
        removed.append(name)
    return removed


@contextlib.contextmanager
def network_namespace(prefix: str = 'pose-suite-test'):
    """A new network namespace with only ``lo`` up; yields its name. Every
    process still in it afterwards is killed, and it is deleted; those an
    earlier run killed with SIGKILL left are deleted first."""
    remove_stale_namespaces(prefix)
    ns = f'{prefix}-{os.getpid()}-{secrets.token_hex(2)}'
    _sh('ip', 'netns', 'add', ns)
    try:
        _sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up')
        yield ns
    finally:
        for pid in _sh('ip', 'netns', 'pids', ns, check=False).stdout.split():
            _sh('kill', '-9', pid, check=False)
        time.sleep(1)
        _sh('ip', 'netns', 'delete', ns, check=False)


def start_cluster():
    """For a module-scoped fixture (``yield from start_cluster()``): a
    running :class:`Cluster` in a namespace of its own; afterwards every
    process of it is stopped, the namespace deleted, and no Ray process of
    the tests may be left."""
    temp_dir = tempfile.mkdtemp(prefix='rt', dir='/tmp')  # short: sockets
    env = dict(os.environ, RAY_AUTH_MODE='token',
               RAY_AUTH_TOKEN=secrets.token_hex(32), OMP_NUM_THREADS='1')
    try:
        with network_namespace() as ns:
            started = None
            try:
                started = Cluster(ns, env, temp_dir)
                yield started
            finally:
                nodes = (started.node2, started.head) if started else ()
                for process in nodes:
                    if process.poll() is None:
                        process.send_signal(signal.SIGTERM)  # `ray stop`
                for process in nodes:
                    try:
                        process.wait(timeout=40)
                    except subprocess.TimeoutExpired:
                        pass  # killed with the namespace
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert not any(temp_dir in cmdline for cmdline in
                   _command_lines().values()), \
        'a Ray process of the tests outlived them'


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return False
    return state.rsplit(')', 1)[1].split()[0] != 'Z'
