"""Files that are never seen half-written, arrays whose size is checked before it is allocated, and
one lock per job of a sweep.

* :func:`write_atomic`: a temporary file in the target's folder, fsync, ``os.replace``: a reader sees
  the old file or the whole new one, never a truncated one (full disk, SIGKILL, power loss). Its name
  carries the writer's pid, so :func:`remove_dead_temps` can clear what a killed writer left; its mode
  is a new file's under the user's umask (0644 under 022), as ``open()`` gives.
* :func:`dumps_json`: strict JSON (non-finite floats become null; a bare NaN is not JSON).
* :func:`load_npy` / :func:`load_npz`: read the .npy header first and refuse an array over
  :func:`array_limit` bytes (``CCHMI_MAX_ARRAY_BYTES``, default 8 GiB) before anything is allocated.
* :func:`job_lock`: ``fcntl.flock`` on ``<folder>/lock``, held while a job runs; the kernel releases
  it when its process dies, so a stale lock never blocks.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ARRAY_LIMIT_ENV = "CCHMI_MAX_ARRAY_BYTES"
DEFAULT_ARRAY_LIMIT = 8 * 2**30
TEMP_SUFFIX = ".tmp"


def finite_json(obj):
    """`obj` with every non-finite float replaced by None (and tuples by lists), for strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def dumps_json(obj) -> str:
    """Indented strict JSON text (NaN and infinities written as null), newline-terminated."""
    return json.dumps(finite_json(obj), indent=1, allow_nan=False) + "\n"


def _create_temp(path: Path) -> tuple[int, Path]:
    """(descriptor, path) of a new file ``.<name>.<pid>.<random>.tmp`` beside `path`, created with
    mode 0666 less the umask, as ``open()`` creates files (``tempfile.mkstemp`` gives 0600)."""
    while True:
        tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), tmp
        except FileExistsError:
            continue


def write_atomic(path, data: str | bytes) -> None:
    """Write `data` to `path` so that `path` is either untouched or complete: temporary file in the
    same folder (named ``.<name>.<pid>.<random>.tmp``), fsync, os.replace, fsync of the folder. The
    file gets the permissions of a new file under the user's umask (0644 under umask 022), whatever
    the mode of a file it replaces."""
    path = Path(path)
    fd, tmp = _create_temp(path)
    try:
        with open(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable; not every file system allows fsync on a folder
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:
        pass


def remove_dead_temps(folder) -> None:
    """Remove the temporary files of :func:`write_atomic` in `folder` whose writer process is gone."""
    for tmp in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        parts = tmp.name.rsplit(".", 3)  # ".<name>", "<pid>", "<random>", "tmp"
        pid = int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else None
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextmanager
def job_lock(folder, wait: bool):
    """Hold the lock of the job whose files are in `folder` (created if missing). Yields True when
    held; with wait=False, yields False at once when another process (or thread) holds it. The lock
    file holds the pid of the last holder, for people; the lock itself is the flock, released on
    exit or when the process dies.

    Job keys are predictable, so the lock is opened without following a symlink (neither `folder`
    nor ``lock`` may be one), created if missing and never truncated; a ``lock`` that is not a
    regular file of this user with one link (a planted hard link to another file) is refused with a
    ValueError naming it, before anything is written. The pid is written over the file's first
    bytes, padded to a fixed width."""
    import fcntl
    import stat

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ValueError(f"{folder}: not a folder this sweep can lock (a symlink?): {exc.strerror or exc}") from None
    try:
        fd = os.open("lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
    except OSError as exc:
        raise ValueError(f"{folder / 'lock'}: cannot open the job's lock without following a link: "
                         f"{exc.strerror or exc}") from None
    finally:
        os.close(dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_uid != os.getuid():
            raise ValueError(f"{folder / 'lock'}: not a job lock (a regular file of this user with one link); "
                             "remove it if it was planted")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = False
        else:
            held = True
            os.pwrite(fd, f"{os.getpid():<20}\n".encode(), 0)
        yield held
    finally:
        os.close(fd)


# -- arrays from files ----------------------------------------------------------------------------

def array_limit() -> int:
    """The largest array, in bytes, that the loaders read: $CCHMI_MAX_ARRAY_BYTES, else 8 GiB."""
    text = os.environ.get(ARRAY_LIMIT_ENV)
    if text is None:
        return DEFAULT_ARRAY_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ValueError(f"{ARRAY_LIMIT_ENV} must be a positive number of bytes, got {text!r}")
    return limit


def check_size(label: str, nbytes: int, what: str, limit: int | None = None) -> None:
    """Refuse (ValueError naming `label`) when `nbytes` is over the limit."""
    limit = array_limit() if limit is None else limit
    if nbytes > limit:
        raise ValueError(f"{label}: {what} would take {nbytes} bytes, over the limit of {limit} bytes "
                         f"(set {ARRAY_LIMIT_ENV} to raise it)")


def _npy_header(fh, label: str) -> tuple[tuple, np.dtype]:
    """Shape and dtype from a .npy header (file position left at the data)."""
    version = np.lib.format.read_magic(fh)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f"{label}: unsupported .npy format version {version[0]}.{version[1]}")
    shape, _, dtype = readers[version](fh)
    if dtype.hasobject:
        raise ValueError(f"{label}: holds Python objects, which are not read (only numeric arrays)")
    return shape, dtype


def _checked_read(fh, label: str, limit: int | None) -> np.ndarray:
    start = fh.tell()
    shape, dtype = _npy_header(fh, label)
    check_size(label, math.prod(shape) * dtype.itemsize, f"the {dtype} array of shape {shape}", limit)
    fh.seek(start)
    return np.lib.format.read_array(fh, allow_pickle=False)


def load_npy(path, limit: int | None = None) -> np.ndarray:
    """A .npy file, its header checked against the size limit before the array is allocated."""
    with open(path, "rb") as fh:
        return _checked_read(fh, str(path), limit)


def load_npz(path, limit: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of a .npz file (by name); every member's header is checked against the size limit
    (their sum, too) before any array is unpacked."""
    limit = array_limit() if limit is None else limit
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.endswith(".npy")]
        total = 0
        for name in names:
            with z.open(name) as member:
                shape, dtype = _npy_header(member, f"{path} ({name})")
            total += math.prod(shape) * dtype.itemsize
            check_size(f"{path}", total, f"the arrays up to {name} (last of shape {shape}, {dtype})", limit)
        arrays = {}
        for name in names:
            with z.open(name) as member:
                arrays[name[:-4]] = np.lib.format.read_array(member, allow_pickle=False)
        return arrays
