"""Content-addressed storage of uploaded files (student photos now; scans and signed rosters later).

A file is known by the SHA-256 of its bytes, so the same bytes are stored once and a key can be
checked against its content. The store keeps bytes only: the content type, who uploaded what and
which record a file belongs to live in the database of the caller.
"""

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from registry.errors import NotFound, msg
from registry.settings import Settings

_KEY = re.compile(r"[0-9a-f]{64}")


class MissingFile(NotFound):
    code = "missing_file"

    def __init__(self, key: str, *, message: str | None = None) -> None:
        super().__init__(message or f"文件不存在：{key}", details={"key": key})
        self.key = key


class InvalidFileKey(MissingFile):
    """A key that is not a lower-case SHA-256 hex digest: nothing can be stored under it.

    A subclass of MissingFile so that a forged key in a URL answers 404 like any unknown key,
    rather than a server error, and never reaches the file system.
    """

    code = "invalid_file_key"

    def __init__(self, key: object) -> None:
        # repr() and a cut: the value is untrusted and may be long or hold control characters.
        shown = repr(key)[:80]
        super().__init__(shown, message=msg("文件编号无效：{shown}", shown=shown))


@dataclass(frozen=True, slots=True)
class StoredFile:
    key: str
    size: int
    content_type: str
    # Equal to key in every store here; kept apart so that a store with another key scheme
    # (an object store's own ids) still hands back the digest that proves the content.
    sha256: str


class FileStore(Protocol):
    def put(self, data: bytes, *, content_type: str) -> StoredFile: ...

    def open(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...


def check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidFileKey(key)
    return key


class LocalFileStore:
    """Files in a local folder, as root/ab/cd/abcd…: two shard levels keep every folder small
    (65,536 leaf folders; a county's photos and scans stay at a few files per folder)."""

    def __init__(self, root: Path) -> None:
        # Resolved once, so that a later change of working directory cannot move the store.
        self.root = Path(root).resolve()

    def path_of(self, key: str) -> Path:
        check_key(key)
        path = self.root / key[:2] / key[2:4] / key
        # The key check already rules out "..", "/" and the like; this second check also refuses
        # a shard folder replaced by a symlink that points out of the store.
        if not path.resolve().is_relative_to(self.root):
            raise InvalidFileKey(key)
        return path

    def put(self, data: bytes, *, content_type: str) -> StoredFile:
        if not content_type or "/" not in content_type:
            raise ValueError(f"content_type must be a media type such as image/jpeg, not {content_type!r}")
        key = hashlib.sha256(data).hexdigest()
        path = self.path_of(key)
        stored = StoredFile(key=key, size=len(data), content_type=content_type, sha256=key)
        # Same bytes, same key: already stored. The size check rewrites a file that a disk fault
        # shortened; a write by this class is never partial (see _write_atomically).
        if path.is_file() and path.stat().st_size == len(data):
            return stored
        _write_atomically(path, data)
        return stored

    def open(self, key: str) -> bytes:
        try:
            return self.path_of(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise MissingFile(key) from None

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the file; a key already gone is no error, so a retention job can be re-run.

        Identical uploads share one file: the caller deletes only when no record refers to the
        key any more. Empty shard folders are left, since removing one could race a put that has
        just created it.
        """
        self.path_of(key).unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    # Written under a temporary name in the target folder (same file system, so the rename is
    # atomic), flushed to disk, then renamed: a reader sees the whole file or none, also after
    # a crash or power cut. Temporary names start with a dot and are never a valid key.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    # The rename itself is durable only once the folder entry is flushed (POSIX).
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def local_file_store(settings: Settings) -> LocalFileStore:
    return LocalFileStore(settings.file_store)
