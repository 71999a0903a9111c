"""Download the published weights into config_files/ (``make weights``).

Usage::

    python -m pose_suite.models.weights [--dest config_files] [--base-url URL | --from DIR]

Each file is streamed to ``<name>.part`` while its SHA-256 is computed, and
renamed into place only when the hash matches the 8 hex digits in its name.
A file already in place and matching is not downloaded again.
"""
import argparse
import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from pose_suite.errors import DownloadError
from pose_suite.models.checkpoints import expected_sha256_prefix, sha256_of

#: The two checkpoints named in the original project's README.
WEIGHT_URLS = (
    'https://download.openmmlab.com/mmpose/v1/projects/rtmpose/'
    'rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth',
    'https://download.openmmlab.com/mmpose/top_down/hrnet/'
    'hrnet_w48_coco_wholebody_384x288_dark-f5726563_20200918.pth',
)
# pose_suite/models/weights.py -> the project folder (config_files/ is there).
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def download(url: str, dest_dir: Path, timeout: float = 30.0,
             chunk_size: int = 1 << 20) -> Path:
    """Download ``url`` into ``dest_dir`` and verify its SHA-256 prefix.

    Returns:
        The path of the verified file.
    Raises:
        DownloadError: network failure (naming the URL and where to put the
        file by hand) or checksum mismatch (the partial file is removed).
    """
    name = url.rsplit('/', 1)[-1]
    target = Path(dest_dir) / name
    expected = expected_sha256_prefix(target)
    if target.is_file() and (expected is None
                             or sha256_of(target).startswith(expected)):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(name + '.part')
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, \
                open(partial, 'wb') as handle:
            for chunk in iter(lambda: response.read(chunk_size), b''):
                digest.update(chunk)
                handle.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, urllib.error.HTTPError):
            reason = f'HTTP {exc.code} {exc.reason}'
        else:
            reason = getattr(exc, 'reason', None) or exc
        raise DownloadError(
            f'cannot download {url} ({reason}); download it by hand and put '
            f'it at {target}') from None
    if expected is not None and not digest.hexdigest().startswith(expected):
        partial.unlink(missing_ok=True)
        raise DownloadError(
            f'downloaded {url} but its SHA-256 starts with '
            f'{digest.hexdigest()[:8]}, not {expected}; refusing it')
    os.replace(partial, target)
    return target


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dest', type=Path,
                        default=PROJECT_ROOT / 'config_files',
                        help='folder to put the weights in')
    parser.add_argument('--base-url', default=None,
                        help='fetch <base-url>/<file name> instead of the '
                             'OpenMMLab URLs (a mirror)')
    parser.add_argument('--from', dest='from_dir', type=Path, default=None,
                        help='copy the files from this folder (a machine '
                             'without internet; hashes checked as for a '
                             'download)')
    parser.add_argument('--timeout', type=float, default=30.0,
                        help='seconds to wait for the server')
    args = parser.parse_args(argv)
    base_url = args.base_url
    if args.from_dir is not None:
        if not args.from_dir.is_dir():
            print(f'error: --from {args.from_dir}: no such folder',
                  file=sys.stderr)
            return 1
        base_url = args.from_dir.resolve().as_uri()
    for url in WEIGHT_URLS:
        if base_url:
            url = base_url.rstrip('/') + '/' + url.rsplit('/', 1)[-1]
        try:
            path = download(url, args.dest, timeout=args.timeout)
        except DownloadError as exc:
            print(f'error: {exc}', file=sys.stderr)
            return 1
        print(f'ok: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
