"""Atomic file replacement: a temporary file in the same directory, fsync, rename.

Readers (cron, node_exporter, the wrapper) see the old file or the new one,
never half of one; a failure leaves the old file and no temporary behind.

A process killed while writing (SIGKILL, a power cut) cannot clean up, so its
temporary file stays.  Temporary files are named ``.BASENAME.PID.RANDOM.tmp``
after the file they replace and the process writing them, and each write first
removes the leftovers of its own file (``remove_stale_temps``); ``apply`` also
sweeps STATE/applied/ as a whole, where a job that is gone leaves a leftover
no later write of the same name would find.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import tempfile
import time

#: a temporary file whose writer still exists is stale only after this long
#: (the writer's pid was reused, or it runs in another pid namespace)
STALE_AFTER_S = 3600.0

_TEMP = re.compile(r"\.(?P<base>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp\Z")
#: what mkstemp named them before the pid was part of the name
_OLD_TEMP = re.compile(r"\.(?P<base>.+)\.[A-Za-z0-9_]{8}\.tmp\Z")


def temp_for(path: str) -> tuple[int, str]:
    """A new temporary file next to ``path``, locked (flock) by this process until closed."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{os.getpid()}.", suffix=".tmp", dir=directory)
    try:
        # The lock says "a writer still holds this file": remove_stale_temps
        # leaves it alone whatever the pid in its name says.  The kernel drops
        # the lock when the writer dies, however it dies.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass  # a file system without flock: the pid in the name still protects it
    return fd, tmp


def _write(fd: int, data: bytes, mode: int, sync: bool = True) -> None:
    """``data`` into a new temporary file open as ``fd`` (closed here), with permissions ``mode``.

    ``sync``: fsync it before returning; a Batch syncs all its files at once instead (_fsync_all).
    """
    try:
        view = memoryview(data)
        while view:  # os.write, not a file object: no isatty, fstat or lseek per file
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


#: a batch syncs its files from this many threads at most: the file system commits
#: concurrent fsyncs together (ext4 and XFS do), 1,000 files in ~50 ms instead of ~0.3 s
_SYNC_THREADS = 16


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_all(paths: list[str]) -> None:
    """fsync every file of ``paths`` (written, closed); raises the first OSError.

    Only these files: syncfs(2) would be one call, but it waits for every
    dirty page of the whole file system, however much someone else wrote.
    """
    if len(paths) <= 2:
        for path in paths:
            _fsync_path(path)
        return
    import threading

    errors: list[OSError] = []

    def work(share: list[str]) -> None:
        try:
            for path in share:
                _fsync_path(path)
        except OSError as exc:
            errors.append(exc)

    n = min(_SYNC_THREADS, len(paths))
    # daemon: an interrupted apply (Ctrl-C) does not wait for them
    threads = [threading.Thread(target=work, args=(paths[i::n],), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _fsync_dir(directory: str) -> None:
    """Make the renames in ``directory`` durable; a file system that cannot sync a directory is left as it is."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def unlink_quietly(path: str) -> None:
    """Remove ``path`` if it can be; a temporary file left behind is swept later (remove_stale_temps)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, as another user
        return True
    return True


def _stale(path: str, pid: int | None, now: float) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False  # its writer holds it right now
        young = now - os.fstat(fd).st_mtime < STALE_AFTER_S
    finally:
        os.close(fd)
    if pid is None:
        return not young
    # The writer is gone, or it is alive and took far longer than any write
    # does (then the pid is someone else's now).  A live writer between
    # mkstemp and flock is spared by the age test.
    return not young if _pid_alive(pid) else True


def remove_stale_temps(directory: str, basename: str | None = None) -> list[str]:
    """Remove temporary files that killed writers left in ``directory`` (only ``basename``'s if given).

    Never raises: a leftover that cannot be removed now is removed next time.
    Returns the paths removed.
    """
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    now = time.time()
    removed = []
    for entry in entries:
        if not entry.endswith(".tmp"):
            continue
        m = _TEMP.match(entry)
        pid = int(m["pid"]) if m else None
        if pid == os.getpid():
            continue  # ours: a Batch in progress
        if not m:
            m = _OLD_TEMP.match(entry)
            if not m:
                continue
        if basename is not None and m["base"] != basename:
            continue
        path = os.path.join(directory, entry)
        if _stale(path, pid, now):
            try:
                os.unlink(path)
                removed.append(path)
            except OSError:
                pass
    return removed


def stage(path: str, data: bytes, mode: int) -> str:
    """``data`` in a synced temporary file next to ``path``, to be renamed over it; raises OSError (none left)."""
    fd, tmp = temp_for(path)
    try:
        _write(fd, data, mode)
    except BaseException:
        unlink_quietly(tmp)
        raise
    return tmp


def replace_atomically(path: str, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with permissions ``mode``; raises OSError (nothing changed then)."""
    remove_stale_temps(os.path.dirname(os.path.abspath(path)), os.path.basename(path))
    tmp = stage(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise


class Batch:
    """Several files replaced together, all or none.

    ``add`` writes each new content to a temporary file (where a full disk
    shows up); ``sync`` makes them all durable at once (``commit`` does it if
    the caller did not); ``commit`` renames them into place, keeping each old
    file under a temporary name (a hard link: no data is copied, so it works
    on a full disk), then syncs the directories once, so that a rename never
    reaches the disk before the data it points to; ``rollback`` puts the old
    files back; ``finish`` drops them.  Any OSError before ``commit`` leaves
    nothing changed once ``discard`` ran.  A killed batch leaves only
    temporary files, which remove_stale_temps clears later; each target is
    always its old file or its new one, never part of one.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[str, str]] = []  # (temporary file, target)
        self._synced = True  # every staged file is durable
        self._done: list[tuple[str, str | None, bytes | None]] = []  # (target, old kept as, old bytes)

    def add(self, path: str, data: bytes, mode: int) -> None:
        # No remove_stale_temps per file: the caller sweeps the directory once.
        fd, tmp = temp_for(path)
        try:
            _write(fd, data, mode, sync=False)
        except BaseException:
            unlink_quietly(tmp)
            raise
        self._staged.append((tmp, path))
        self._synced = False

    def sync(self) -> None:
        """Make every staged file durable (one pass for all of them, not an fsync per file in turn)."""
        if not self._synced:
            _fsync_all([tmp for tmp, _ in self._staged])
            self._synced = True

    def discard(self) -> None:
        """Before commit: remove every temporary file; nothing changed."""
        for tmp, _ in self._staged:
            unlink_quietly(tmp)
        self._staged = []
        self._synced = True

    def commit(self) -> None:
        """Rename every staged file into place; on an error, undo the renames done so far and raise."""
        try:
            self.sync()
            directories = {os.path.dirname(os.path.abspath(path)) for _, path in self._staged}
            while self._staged:
                tmp, path = self._staged[0]
                kept, old = self._keep(path)
                self._done.append((path, kept, old))
                os.replace(tmp, path)
                self._staged.pop(0)
            for directory in sorted(directories):
                _fsync_dir(directory)
        except BaseException:
            self.rollback()
            self.discard()
            raise

    @staticmethod
    def _keep(path: str) -> tuple[str | None, bytes | None]:
        """The current file under a temporary name (or in memory where hard links fail), to undo with."""
        if not os.path.lexists(path):
            return None, None
        # mktemp only names it: os.link creates it and fails if the name is taken
        kept = tempfile.mktemp(prefix=f".{os.path.basename(path)}.{os.getpid()}.", suffix=".tmp",
                               dir=os.path.dirname(os.path.abspath(path)))
        try:
            os.link(path, kept)
            return kept, None
        except OSError:  # a file system without hard links
            with open(path, "rb") as fh:
                return None, fh.read()

    def rollback(self) -> None:
        """After commit: put every old file back (a new file goes); best effort, never raises."""
        while self._done:
            path, kept, old = self._done.pop()
            try:
                if kept is not None:
                    os.replace(kept, path)
                elif old is not None:
                    replace_atomically(path, old, os.stat(path).st_mode & 0o7777)
                else:
                    os.unlink(path)
            except OSError:
                pass

    def finish(self) -> None:
        """After commit: the new files stay; drop the kept old ones."""
        for _, kept, _ in self._done:
            if kept is not None:
                unlink_quietly(kept)
        self._done = []
