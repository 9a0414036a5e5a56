"""`PathWatcher`: every file wait of an engine (`FileTrigger`, `FileDeleteTrigger`, the
deferrable `FileSensor`) woken by the kernel when a directory it waits in changes, on Linux
through inotify; a slow poll only where the kernel cannot tell.

How a wait is watched. Its pattern is planned into (directory, name) pairs: the directories
that exist along the pattern and the name (a literal or a glob component) that matters in each.
A directory that does not exist yet is waited for in its nearest existing ancestor; a
directory that matches the whole pattern is watched inside (it counts once it is not empty);
a recursive `**` watches every directory below it. Each directory has one inotify watch,
shared by every wait that needs it; an event in it re-checks only the waits whose name matches
the event's. A re-check (the plan again, and `matches()`) runs in one thread hop for all the
waits an event round made dirty; a wait that gained a watch is checked once more, so that
nothing written before its watch existed is missed. Nothing runs while nothing changes.

Where inotify cannot tell — not Linux, no inotify instance or watch left (the kernel's limits),
or a network or FUSE file system (changes made on another machine raise no event here) — the
wait polls on the engine's clock every `poke_interval` seconds, as it did before.

Why asyncinotify: it wraps the kernel's calls as they are (add or drop one watch at any time,
read events from the event loop, no thread), is typed and small. watchfiles (the Rust `notify`
crate, used by uvicorn) fixes a watcher's paths when it starts — a shared watcher whose
directories come and go with the waits would be restarted on each — and batches changes for at
least its `step` (50 ms by default) in a thread of its own; inotify_simple is untyped and
synchronous; raw ctypes would repeat asyncinotify's code here.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import heapq
import itertools
import os
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

import anyio
import anyio.abc

from asyncflow.logs import get_logger
from asyncflow.triggers.file import matches

try:
    import asyncinotify

    HAVE_INOTIFY = True
except Exception:  # not Linux (no inotify in libc): every wait polls  # pragma: no cover
    HAVE_INOTIFY = True

log = get_logger("asyncflow.triggers")

#: (directory, the names in it that matter: a literal, a glob component, or None for any)
Entry = tuple[str, str | None]
#: file systems whose changes may be made elsewhere, unseen by this kernel's inotify
REMOTE = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs",
                    "lustre", "gpfs", "afs", "virtiofs", "sshfs", "davfs"})  # fmt: skip


class WaitClock(Protocol):
    def now(self) -> datetime: ...

    async def wait(self, event: anyio.Event, deadline: datetime | None) -> None: ...


def plan(pattern: str, recursive: bool) -> set[Entry]:
    """The (directory, name) pairs whose changes can change what `pattern` matches."""
    parts = [part for part in os.path.abspath(pattern).split(os.sep) if part]
    dirs, out = [os.sep], set[Entry]()
    for k, part in enumerate(parts):
        last, nxt = k == len(parts) - 1, []
        for folder in dirs:
            if recursive and part == "**":  # anything below may match: watch all of it
                out.update((sub, None) for sub in _tree(folder))
            elif not glob.has_magic(part):
                child = os.path.join(folder, part)
                is_dir = os.path.isdir(child)
                if last or not is_dir:  # a missing folder is awaited in its parent
                    out.add((folder, part))
                if is_dir:
                    nxt.append(child)
            else:
                out.add((folder, part))
                nxt.extend(_matching_dirs(folder, part))
        dirs = nxt
    out.update((folder, None) for folder in dirs)  # a matching folder counts once not empty
    return out


def _tree(folder: str) -> list[str]:
    found = [folder]
    for root, subdirs, _ in os.walk(folder):
        found.extend(os.path.join(root, name) for name in subdirs)
    return found


def _matching_dirs(folder: str, part: str) -> list[str]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    hidden_ok = part.startswith(".")  # glob's rule: `*` does not match a leading dot
    paths = [os.path.join(folder, name) for name in fnmatch.filter(names, part)
             if hidden_ok or not name.startswith(".")]  # fmt: skip
    return [path for path in paths if os.path.isdir(path)]


Key = tuple[str, bool]  # (pattern, recursive)


def survey(keys: Iterable[Key]) -> dict[Key, tuple[set[Entry], list[str]]]:
    """For each (pattern, recursive): its plan and its matches (run in a worker thread)."""
    return {key: (plan(*key), matches(*key)) for key in keys}


def remote_fs(path: str, mounts: list[tuple[str, str]]) -> bool:
    """Whether `path` is on a file system whose changes may come from another machine."""
    best, kind = "", ""
    for point, fstype in mounts:
        inside = path == point or path.startswith(point.rstrip(os.sep) + os.sep)
        if inside and len(point) >= len(best):
            best, kind = point, fstype
    return kind in REMOTE or kind.startswith("fuse")


def _mounts() -> list[tuple[str, str]]:
    """(mount point, file system type) of this process's mounts; empty if unknown."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as lines:
            found = []
            for line in lines:
                fields = line.split()
                sep = fields.index("-")
                found.append((fields[4].replace("\\040", " "), fields[sep + 1]))
            return found
    except (OSError, ValueError, IndexError):
        return []


class _Wait:
    __slots__ = ("due", "entries", "event", "exists", "interval", "key", "polled", "result")

    def __init__(self, pattern: str, recursive: bool, exists: bool, interval: float) -> None:
        self.key = (pattern, recursive)
        self.exists = exists
        self.interval = timedelta(seconds=max(interval, 0.01))
        self.event = anyio.Event()
        self.result: list[str] | None = None
        self.entries: dict[Entry, _Dir] = {}
        self.polled = False
        self.due: datetime | None = None


class _Dir:
    """One watched directory and the waits that care about it, indexed by the name they need."""

    __slots__ = ("every", "globs", "names", "paths", "watch")

    def __init__(self, path: str, watch: Any) -> None:
        self.paths, self.watch = {path}, watch
        self.names: dict[str, set[_Wait]] = {}
        self.globs: dict[str, set[_Wait]] = {}
        self.every: set[_Wait] = set()

    def group(self, name: str | None) -> set[_Wait]:
        if name is None:
            return self.every
        index = self.globs if glob.has_magic(name) else self.names
        return index.setdefault(name, set())

    def drop(self, name: str | None, wait: _Wait) -> None:
        if name is None:
            self.every.discard(wait)
            return
        index = self.globs if glob.has_magic(name) else self.names
        group = index.get(name)
        if group is not None:
            group.discard(wait)
            if not group:
                del index[name]

    def empty(self) -> bool:
        return not (self.every or self.names or self.globs)

    def all(self) -> set[_Wait]:
        found = set(self.every)
        for group in itertools.chain(self.names.values(), self.globs.values()):
            found |= group
        return found

    def touched(self, name: str) -> set[_Wait]:
        found = set(self.every) | self.names.get(name, set())
        for pattern, group in self.globs.items():
            if fnmatch.fnmatchcase(name, pattern):
                found |= group
        return found


if HAVE_INOTIFY:
    _MASK = (asyncinotify.Mask.CREATE | asyncinotify.Mask.DELETE | asyncinotify.Mask.MOVE
             | asyncinotify.Mask.DELETE_SELF | asyncinotify.Mask.MOVE_SELF
             | asyncinotify.Mask.ONLYDIR)  # fmt: skip
    _SELF = (asyncinotify.Mask.DELETE_SELF | asyncinotify.Mask.MOVE_SELF
             | asyncinotify.Mask.IGNORED | asyncinotify.Mask.UNMOUNT)  # fmt: skip


#: what `_watch` returns for a folder gone before its watch was added
_GONE = _Dir("", None)


class PathWatcher:
    """Every file wait of one engine. `bind()` it to the task group its helpers run in."""

    def __init__(self, clock: WaitClock, *, use_inotify: bool = True) -> None:
        self.clock = clock
        self._tg: anyio.abc.TaskGroup | None = None
        self._use_inotify = use_inotify and HAVE_INOTIFY
        self._inotify: Any = None
        self._started = False
        self._waits: set[_Wait] = set()
        self._dirty: set[_Wait] = set()
        self._dirty_wake = anyio.Event()
        self._dirs: dict[str, _Dir] = {}
        self._by_wd: dict[int, _Dir] = {}
        self._polls: list[tuple[datetime, int, _Wait]] = []
        self._poll_wake = anyio.Event()
        self._seq = itertools.count()
        self._mounts: list[tuple[str, str]] | None = None
        self._polled = 0
        self._checking = 0
        self.rounds = 0  # thread hops re-checking waits after events
        self.polls = 0  # poll rounds (waits inotify cannot serve)
        self.events = 0  # inotify events read

    def bind(self, tg: anyio.abc.TaskGroup) -> None:
        self._tg = tg

    async def wait(self, pattern: str, *, recursive: bool, exists: bool,
                   interval: float) -> list[str]:  # fmt: skip
        """Until a path matches `pattern` (exists) or none does (not exists); the matches."""
        wait = _Wait(pattern, recursive, exists, interval)
        self._start()
        self._waits.add(wait)
        self._mark(wait)
        try:
            await wait.event.wait()
        finally:
            self._forget(wait)
        return wait.result or []

    # -- the helpers ---------------------------------------------------------------------------
    def _start(self) -> None:
        if self._started or self._tg is None:
            return
        self._started = True
        if self._use_inotify:
            try:
                self._inotify = asyncinotify.Inotify(cache_size=256)
            except OSError as exc:
                log.warning("inotify is unavailable: file waits poll", error=str(exc))
            else:
                self._tg.start_soon(self._read)
        self._tg.start_soon(self._check)
        self._tg.start_soon(self._poll)

    async def _read(self) -> None:
        inotify = self._inotify
        try:
            async for event in inotify:
                self.events += 1
                self._on_event(event)
        finally:
            self._inotify = None
            inotify.close()

    def _on_event(self, event: Any) -> None:
        mask = event.mask
        if mask & asyncinotify.Mask.Q_OVERFLOW:  # events were lost: everyone looks again
            for wait in self._waits:
                self._mark(wait)
            return
        watch = event.watch
        folder = self._by_wd.get(watch.wd) if watch is not None else None
        if folder is None:
            return
        if mask & _SELF:  # the folder itself went: its waits plan again
            if mask & (asyncinotify.Mask.IGNORED | asyncinotify.Mask.UNMOUNT):
                self._unwatch(folder, removed=True)
            touched = folder.all()
        elif event.name is not None:
            touched = folder.touched(str(event.name))
        else:
            return
        for wait in touched:
            self._mark(wait)

    def _mark(self, wait: _Wait) -> None:
        if not wait.event.is_set() and not wait.polled:
            self._dirty.add(wait)
            self._dirty_wake.set()

    async def _check(self) -> None:
        """Re-check the dirty waits, all in one thread hop per round."""
        while True:
            await self._dirty_wake.wait()
            self._dirty_wake = anyio.Event()
            batch, self._dirty = self._dirty, set()
            batch = {w for w in batch if not w.event.is_set()}
            if not batch:
                continue
            self.rounds += 1
            self._checking = len(batch)
            try:
                found = await anyio.to_thread.run_sync(survey, {w.key for w in batch})
            finally:
                self._checking = 0
            for wait in batch:
                if wait.event.is_set():
                    continue
                entries, hits = found[wait.key]
                if bool(hits) == wait.exists:
                    wait.result = hits
                    wait.event.set()
                elif self._inotify is None or not self._attach(wait, entries):
                    self._to_poll(wait)

    def _attach(self, wait: _Wait, entries: set[Entry]) -> bool:
        """Watch `entries` for `wait` (and no others); False if one cannot be watched."""
        fresh = False
        for entry, folder in list(wait.entries.items()):
            if entry not in entries or self._dirs.get(entry[0]) is not folder:
                del wait.entries[entry]
                self._detach(wait, entry[1], folder)
        for entry in entries:
            if entry in wait.entries:
                continue
            watched = self._watch(entry[0])
            if watched is None:
                return False
            fresh = True
            if watched is not _GONE:
                watched.group(entry[1]).add(wait)
                wait.entries[entry] = watched
        if fresh:  # a change made before the watch existed was not seen: look once more
            self._mark(wait)
        return True

    def _watch(self, path: str) -> _Dir | None:
        """The folder's shared watch (added now if need be); `_GONE` if the folder went away
        meanwhile (the next plan says where to wait); None if it cannot be watched."""
        folder = self._dirs.get(path)
        if folder is not None:
            return folder
        if self._mounts is None or not self._dirs:
            self._mounts = _mounts()  # read again whenever no folder is watched
        if remote_fs(path, self._mounts):
            return None
        try:
            watch = self._inotify.add_watch(path, _MASK)
        except OSError as exc:
            if not os.path.isdir(path):
                return _GONE
            log.warning("cannot watch a folder: its file waits poll", path=path,
                        error=str(exc))  # fmt: skip
            return None
        shared = self._by_wd.get(watch.wd)
        if shared is None:
            shared = self._by_wd[watch.wd] = _Dir(path, watch)
        else:  # the same folder by another path (a link): one watch, one index
            shared.paths.add(path)
        self._dirs[path] = shared
        return shared

    def _detach(self, wait: _Wait, name: str | None, folder: _Dir) -> None:
        folder.drop(name, wait)
        if (
            folder.empty()
            and folder.watch is not None
            and self._by_wd.get(folder.watch.wd) is folder
        ):
            self._unwatch(folder, removed=False)

    def _unwatch(self, folder: _Dir, *, removed: bool) -> None:
        """Stop watching `folder` (`removed`: the kernel already did)."""
        for path in folder.paths:
            if self._dirs.get(path) is folder:
                del self._dirs[path]
        if self._by_wd.get(folder.watch.wd) is folder:
            del self._by_wd[folder.watch.wd]
        if not removed and self._inotify is not None:
            with contextlib.suppress(OSError):  # the kernel dropped it already
                self._inotify.rm_watch(folder.watch)

    def _forget(self, wait: _Wait) -> None:
        wait.event.set()
        self._waits.discard(wait)
        self._dirty.discard(wait)
        self._detach_all(wait)
        if wait.polled:
            self._polled -= 1

    def _detach_all(self, wait: _Wait) -> None:
        for (_, name), folder in wait.entries.items():
            self._detach(wait, name, folder)
        wait.entries.clear()

    # -- the fallback: polling ------------------------------------------------------------------
    def _to_poll(self, wait: _Wait) -> None:
        self._detach_all(wait)
        wait.polled = True
        self._polled += 1
        wait.due = self.clock.now() + wait.interval
        heapq.heappush(self._polls, (wait.due, next(self._seq), wait))
        self._poll_wake.set()

    async def _poll(self) -> None:
        while True:
            now = self.clock.now()
            due: list[_Wait] = []
            while self._polls and self._polls[0][0] <= now:
                wait = heapq.heappop(self._polls)[2]
                if not wait.event.is_set():
                    due.append(wait)
            if due:
                self.polls += 1
                keys = list({w.key for w in due})
                found = await anyio.to_thread.run_sync(_matches, keys)
                now = self.clock.now()
                for wait in due:
                    hits = found[wait.key]
                    if bool(hits) == wait.exists:
                        wait.result = hits
                        wait.event.set()
                    else:
                        wait.due = now + wait.interval
                        heapq.heappush(self._polls, (wait.due, next(self._seq), wait))
                continue
            self._poll_wake = anyio.Event()
            await self.clock.wait(self._poll_wake, self._polls[0][0] if self._polls else None)

    def statistics(self) -> dict[str, int]:
        return {"file_waits": len(self._waits), "file_watches": len(self._by_wd),
                "file_rounds": self.rounds, "file_events": self.events,
                "file_checking": len(self._dirty) + self._checking,
                "file_polled": self._polled,
                "file_polls": self.polls}  # fmt: skip


def _matches(keys: list[tuple[str, bool]]) -> dict[tuple[str, bool], list[str]]:
    return {key: matches(*key) for key in keys}
