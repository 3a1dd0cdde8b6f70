"""Opening the CLI's own state files (the audit log and journal, its lock, the deployment-turn file) without
being steered by whoever else can write where they live.

Each is opened with O_NOFOLLOW (a symbolic link planted at the path is refused, never followed to a file of
someone else's choosing) and O_CLOEXEC (no child process inherits it), and refused when group or others may
write it (`st_mode & 0o022`), as ssh refuses a key file others could have changed: such a file may hold
intents or records the bot never wrote. New files are created 0o600.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import IO, Any

NEW_FILE_MODE = 0o600
LOOSE_BITS = 0o022  # writable by group or others


class UnsafeFile(ValueError):
    """A state file that may have been written by someone else: a symbolic link, a non-regular file, or
    group- or world-writable. Nothing is read from it or written to it. The message is one line."""


def _flags(write: bool, append: bool, create: bool) -> int:
    flags = os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= (os.O_RDWR if write else os.O_RDONLY)
    if append:
        flags |= os.O_APPEND
    if create:
        flags |= os.O_CREAT
    return flags


def open_fd(path: str | os.PathLike[str], *, write: bool = False, append: bool = False, create: bool = False,
            exclusive: bool = False) -> int:
    """A file descriptor on `path`, checked after opening (fstat, so no swap between check and use)."""
    flags = _flags(write, append, create) | (os.O_EXCL if exclusive else 0)
    try:
        fd = os.open(path, flags, NEW_FILE_MODE)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnsafeFile(f"{path} is a symbolic link; refused (state files are never followed through links)") from None
        raise
    try:
        check_fd(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_fd(fd: int, path: str | os.PathLike[str]) -> None:
    """Refuse what is not a regular file, or what group or others may write."""
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"{path} is not a regular file; refused")
    if info.st_mode & LOOSE_BITS:
        raise UnsafeFile(f"{path} is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o}); refused: "
                         f"make it private (chmod go-w {path})")


def open_file(path: str | os.PathLike[str], mode: str, **text: Any) -> IO[Any]:
    """`open()`'s modes "rb", "r", "ab", "a", "a+b", "a+", "r+b" on a checked descriptor ("a" modes create)."""
    append = mode.startswith("a")
    write = append or "+" in mode
    fd = open_fd(path, write=write, append=append, create=append)
    try:
        return os.fdopen(fd, mode, **text)
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike[str]) -> bytes | None:
    """The file's content, or None when it does not exist."""
    try:
        handle = open_file(path, "rb")
    except FileNotFoundError:
        return None
    with handle:
        return handle.read()


def touch(path: str | os.PathLike[str]) -> None:
    """Create the file (0o600) if it is missing; prove an existing one is safe and writable."""
    os.close(open_fd(path, write=True, append=True, create=True))


def replace_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to a new private file beside `path`, then rename it over `path` (a rename replaces a
    planted link itself, never the file it points to)."""
    target = Path(path)
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        os.unlink(temporary)  # a leftover of a killed run of this pid (or a planted link): never written through
    except FileNotFoundError:
        pass
    fd = open_fd(temporary, write=True, create=True, exclusive=True)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
