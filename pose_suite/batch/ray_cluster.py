"""Ray for ``executor: ray``: importing it, starting a private Ray or
joining a cluster, and sizing the workers to what fits on each node.

Separate from submitting (:mod:`pose_suite.batch.ray_executor`) because it
is the part that meets the user's machines: addresses, tokens, CPUs and
GPUs per node, each refusal said in one line naming the setting.
"""
import contextlib
import os
import signal
import socket
import warnings
from typing import Dict, List

from pose_suite.errors import ClusterError, ConfigError, DeviceError, one_line
from pose_suite.media.images import native_stderr_captured

#: Seconds a cluster's address has to answer like Ray (gRPC's HTTP/2
#: greeting) once connected.
PROTOCOL_TIMEOUT_S = 5.0
#: The HTTP/2 client connection preface and an empty SETTINGS frame.
HTTP2_GREETING = (b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
                  b'\x00\x00\x00\x04\x00\x00\x00\x00\x00')


def import_ray():
    """The ray module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError('executor ray needs the ray package (make install '
                          'installs it; or pip install "ray[default]")') \
            from None
    return ray


def connect(ray, config, namespace: str) -> None:
    """Start a private Ray (``ray_address`` "") or join a cluster."""
    options = dict(namespace=namespace, log_to_driver=False,
                   logging_level='ERROR', configure_logging=True)
    if config.ray_address == '':
        # Ray counts the CPUs itself, within a container's or a Slurm
        # job's limits (os.cpu_count() sees the whole host).
        # "local": a new Ray of our own, never the cluster a `ray start`
        # on this machine or RAY_ADDRESS points to (ray.init's default).
        target = 'a private Ray on this machine'
        options.update(address='local', include_dashboard=False)
    else:
        target = f'the Ray cluster at {config.ray_address}'
        options.update(address=config.ray_address)
        _check_reachable(config.ray_address)
    # ray.init installs its own SIGTERM handler (which aborts the driver
    # with a stack dump); ours stops the run as Ctrl-C does.
    handlers = {number: signal.getsignal(number)
                for number in (signal.SIGINT, signal.SIGTERM)}
    # Joining a cluster, Ray's core logs each refused try on descriptor 2
    # (twenty lines for a wrong token): kept from the terminal, read for
    # the cause. (A private Ray starts processes that would inherit it.)
    capture = native_stderr_captured() if config.ray_address \
        else contextlib.nullcontext([])
    printed: List[str] = []
    try:
        with warnings.catch_warnings(), capture as printed:
            warnings.simplefilter('ignore')
            ray.init(**options)
        _quiet_driver(ray)
    except Exception as exc:  # noqa: BLE001
        if any('InvalidAuthToken' in line or 'Unauthenticated' in line
               for line in printed) or 'token' in str(exc).lower():
            raise ClusterError(
                f'{target} refused this run\'s authentication token: set '
                'RAY_AUTH_TOKEN to the cluster\'s token (or run where '
                '`ray get-auth-token` shows it)') from None
        raise ClusterError(f'cannot start or join {target}: '
                           f'{one_line(exc)}') from None
    finally:
        for number, handler in handlers.items():
            if handler is not None:
                signal.signal(number, handler)


def _quiet_driver(ray) -> None:
    """Keep the errors that Ray's nodes push to the driver (a dead
    worker's pages of explanation, in colour) off stdout: Ray's driver
    prints them from a thread of its own whatever ``log_to_driver`` says,
    through the switch that Ray's debugger turns off too
    (``ray.util.rpdb``). The batch says in one line what they mean."""
    module = getattr(getattr(ray, '_private', None), 'worker', None)
    if hasattr(module, '_worker_logs_enabled'):
        module._worker_logs_enabled = False


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at a host:port address, or
    something that is not Ray (a web server, say): Ray's own connection
    retries take minutes (82 s measured with its timeouts cut to 5 s; 329 s
    against an HTTP server) before they give up.

    A Ray cluster's address (its GCS port, or the Ray Client port of a
    ``ray://`` address) speaks gRPC, which is HTTP/2: it answers the HTTP/2
    greeting with a SETTINGS frame; an HTTP/1 server answers ``HTTP/1.``
    or closes. (With ``RAY_USE_TLS`` the port speaks TLS first: only the
    connection is checked.)

    Raises:
        ClusterError
    """
    if address == 'auto':
        return  # Ray finds the local cluster's address, or fails at once
    host, _, port = address.split('://')[-1].rpartition(':')
    if not port.isdigit():
        return  # no port: Ray's default, Ray says what it finds
    try:
        connection = socket.create_connection((host.strip('[]'), int(port)),
                                              timeout=10)
    except OSError as exc:
        raise ClusterError(
            f'cannot reach the Ray cluster at {address}: '
            f'{exc.strerror or exc} (start one with `ray start --head`, '
            'or check ray_address)') from None
    with connection:
        if os.environ.get('RAY_USE_TLS', '0').lower() in ('1', 'true'):
            return
        answer = _answer_to_greeting(connection)
    if len(answer) < 9 or answer[3] != 4 or answer[5:9] != bytes(4):
        said = answer.split(b'\r\n', 1)[0].decode('ascii',
                                                    'replace').strip()
        said = f' (it said "{said}")' if said.isprintable() and said \
            else ''
        raise ClusterError(
            f'{address} is not a Ray cluster: what listens there does not '
            f'answer as Ray does{said}; check ray_address (the head\'s '
            'port, 6379 by default, or ray://host:10001)')


def _answer_to_greeting(connection: socket.socket) -> bytes:
    """The first 9 bytes (an HTTP/2 frame header) a server sends back to
    :data:`HTTP2_GREETING` within :data:`PROTOCOL_TIMEOUT_S` (fewer if it
    closes or stays silent)."""
    answer = b''
    connection.settimeout(PROTOCOL_TIMEOUT_S)
    try:
        connection.sendall(HTTP2_GREETING)
        while len(answer) < 9:
            more = connection.recv(9 - len(answer))
            if not more:
                break
            answer += more
    except OSError:
        pass  # reset, or silent: not Ray
    return answer


def worker_shape(nodes: List[Dict[str, float]], config,
                 wanted: int) -> dict:
    """How many workers, and what each needs, fitted node by node: a
    worker's CPUs and GPUs must all be on one node.

    Args:
        nodes: each alive node's resources (``{'CPU': 3, 'GPU': 1, ...}``).
        config: the run's :class:`AnalysisConfig` (``workers``,
            ``threads_per_worker``, ``gpus_per_worker``, ``device``).
        wanted: units to run; no more workers than that are started.
    Returns:
        ``{'count', 'num_cpus', 'num_gpus'}``.
    Raises:
        ClusterError, DeviceError: the cluster cannot hold what the config
        asks, naming the shape that does not fit.
    """
    threads = config.threads_per_worker
    gpus = sum(node.get('GPU', 0) for node in nodes)
    gpus_per_worker = config.gpus_per_worker
    if gpus_per_worker == 'auto':
        gpus_per_worker = 1.0 if gpus >= 1 and config.device != 'cpu' \
            else 0.0
    if config.device.startswith('cuda') and gpus == 0:
        raise DeviceError(f'device is {config.device} but the Ray cluster '
                          'has no GPU: set "device": "cpu" (or "auto")')
    if gpus_per_worker > 0 and gpus == 0:
        raise ClusterError(
            f'gpus_per_worker is {gpus_per_worker:g} but the Ray cluster has '
            'no GPU: set "gpus_per_worker": 0 to use its CPUs')
    if gpus_per_worker > 0 and config.device == 'cpu':
        raise ClusterError(f'gpus_per_worker is {gpus_per_worker:g} but '
                           'device is cpu: set one of them otherwise')
    fits = [int(node.get('CPU', 0) // threads) if not gpus_per_worker else
            min(int(node.get('CPU', 0) // threads),
                # Ray counts GPU fractions to 1e-4: 0.2 five times is 1.0,
                # though 1 // 0.2 == 4.0 in floats (floor after the epsilon).
                int(node.get('GPU', 0) / gpus_per_worker + 1e-6))
            for node in nodes]
    shape = f'{threads} CPU(s)' + (f' and {gpus_per_worker:g} GPU(s)'
                                   if gpus_per_worker else '')
    nodes_said = ', '.join(f'{node.get("CPU", 0):g} CPUs'
                           + (f' {node.get("GPU", 0):g} GPUs' if gpus else '')
                           for node in nodes) or 'none'
    if sum(fits) == 0:
        raise ClusterError(f'no Ray node can hold a worker of {shape} '
                           f'(nodes: {nodes_said}); lower '
                           'threads_per_worker or gpus_per_worker')
    count = sum(fits) if config.workers == 'auto' else config.workers
    if count > sum(fits):
        raise ClusterError(
            f'{count} workers of {shape} each do not fit on the Ray '
            f'cluster, which holds {sum(fits)} (nodes: {nodes_said})')
    return dict(count=max(1, min(count, wanted)), num_cpus=threads,
                num_gpus=gpus_per_worker)
