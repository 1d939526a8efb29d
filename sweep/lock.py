"""One writer per results directory: shards of one grid may write together, nothing else may.

Each writer registers itself as a file ``writers/<id>.json`` in the sweep's
companion directory (see `sweep.store`) and holds an exclusive `flock` on
it for as long as it runs; the file says who it is (pid, host, grid hash,
shard, command, start time), so a refusal can name the other process. The
kernel drops a flock when its holder dies, however it dies, so a record
whose lock can be taken is a dead writer's: it is removed, with the
temporaries that writer left.

Registration, and whatever a writer does before training (reading and
writing the manifest, verifying and moving parts aside), happens under a
second exclusive lock, ``lock``, held briefly: two writers never set up at
once, so two grids cannot both find the directory free.
"""
import errno
import fcntl
import json
import os
import shutil
import socket
import sys
from datetime import datetime, timezone

from sweep import store
from sweep.errors import SweepError

_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def _describe(record, grid_hash):
    shard = record.get("shard")
    what = f"shard {shard[0]}/{shard[1]} of " if shard else ""
    what += "this grid" if record.get("grid_hash") == grid_hash else f"another grid ({record.get('grid_hash')})"
    return (f"pid {record.get('pid')} on {record.get('host')}, {what}, since {record.get('started')}"
            + (f": {record['command']}" if record.get("command") else ""))


class Writer:
    """The right to write one results directory, for a `with` block.

    On entry the directory's setup lock is held and the writer registered
    (or a SweepError names the writer in the way); call `setup_done()` once
    the manifest and the parts are in order, to let other shards start.
    `tmp` is this writer's own directory for files being written.
    """

    def __init__(self, layout, *, grid_hash, shard=None, command=None, warn=None):
        self.layout = layout
        self.grid_hash = grid_hash
        self.shard = tuple(shard) if shard else None
        self.command = command if command is not None else " ".join(sys.argv)
        self.warn = warn
        self.id = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self.tmp = layout.tmp / self.id
        self._gate = None
        self._record = None

    def __enter__(self):
        store.ensure_writable_dir(self.layout.data)
        admin = store.make_dir(self.layout.admin, "directory")
        writers = store.make_dir(admin / "writers", "directory")
        self._gate = self._open(admin / "lock")
        locked = self._flock(self._gate, fcntl.LOCK_EX)
        try:
            if locked:
                for record in self._live_others(writers):
                    if not self._compatible(record):
                        raise SweepError(f"{self.layout.data} is being written by another sweep ({_describe(record, self.grid_hash)}); "
                                         f"wait for it to end or stop it (only shards of one grid run together)")
            self._register(writers)
        except BaseException:
            self._close_gate()
            raise
        return self

    def __exit__(self, *exc):
        self.setup_done()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self._record is not None:
            path, fh = self._record
            try:
                path.unlink()
            except OSError:
                pass
            fh.close()
            self._record = None
        return False

    def setup_done(self):
        """Release the setup lock (registration stays until the `with` block ends)."""
        self._close_gate()

    # ----------------------------------------------------------------------- internals

    def _open(self, path):
        try:
            return open(path, "a+")
        except OSError as exc:
            raise SweepError(f"cannot open {path}: {exc.strerror or exc}") from None

    def _flock(self, fh, how):
        """Take the lock; False when this filesystem has no flock (then writers are not detected)."""
        try:
            fcntl.flock(fh, how)
            return True
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                if self.warn:
                    self.warn(f"sweep: warning: cannot lock {fh.name} ({exc.strerror}): other processes writing "
                              f"{self.layout.data} at the same time will not be detected")
                return False
            raise SweepError(f"cannot lock {fh.name}: {exc.strerror}") from None

    def _close_gate(self):
        if self._gate is not None:
            self._gate.close()  # closing drops the flock
            self._gate = None

    def _live_others(self, writers):
        """Records of the writers alive now; dead writers' records and temporaries are removed."""
        live = []
        for entry in sorted(os.scandir(writers), key=lambda e: e.name):
            if not entry.name.endswith(".json"):
                continue
            try:
                fh = open(entry.path, "r+")
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise SweepError(f"cannot open {entry.path}: {exc.strerror}") from None
            with fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    try:
                        live.append(json.loads(fh.read() or "{}"))
                    except ValueError:
                        live.append({"pid": "?", "host": "?"})
                    continue
                except OSError:
                    continue
                # nobody holds it: its writer is dead
                shutil.rmtree(self.layout.tmp / entry.name[:-len(".json")], ignore_errors=True)
                os.unlink(entry.path)
        return live

    def _compatible(self, record):
        shard = tuple(record["shard"]) if record.get("shard") else None
        return (self.shard is not None and shard is not None and record.get("grid_hash") == self.grid_hash
                and shard[1] == self.shard[1] and shard[0] != self.shard[0])

    def _register(self, writers):
        path = writers / f"{self.id}.json"
        fh = self._open(path)
        self._flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "grid_hash": self.grid_hash,
                  "shard": list(self.shard) if self.shard else None, "command": self.command,
                  "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        fh.write(json.dumps(record))
        fh.flush()
        self._record = (path, fh)
        store.make_dir(self.tmp, "directory")
        # temporaries of writers that died before writers/ existed (none are expected)
        for entry in os.scandir(self.layout.tmp):
            if entry.name != self.id and not (writers / f"{entry.name}.json").exists():
                shutil.rmtree(entry.path, ignore_errors=True)

