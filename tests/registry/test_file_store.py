import hashlib
import os
from pathlib import Path

import pytest

from registry.errors import NotFound
from registry.file_store import FileStore, InvalidFileKey, LocalFileStore, MissingFile, StoredFile, local_file_store
from registry.settings import Settings

PHOTO = b"\xff\xd8\xff not really a photo, the store does not care"


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("data", [PHOTO, b"", bytes(range(256)) * 1000])
def test_put_then_open_returns_the_same_bytes(store: LocalFileStore, data: bytes) -> None:
    digest = hashlib.sha256(data).hexdigest()

    stored = store.put(data, content_type="image/jpeg")

    assert stored == StoredFile(key=digest, size=len(data), content_type="image/jpeg", sha256=digest)
    assert store.exists(stored.key)
    assert store.open(stored.key) == data


def test_local_store_is_a_file_store(tmp_path: Path) -> None:
    store: FileStore = LocalFileStore(tmp_path)
    assert store.open(store.put(PHOTO, content_type="image/jpeg").key) == PHOTO


def test_same_bytes_are_stored_once(store: LocalFileStore) -> None:
    first = store.put(PHOTO, content_type="image/jpeg")
    again = store.put(PHOTO, content_type="application/octet-stream")
    other = store.put(PHOTO + b"!", content_type="image/jpeg")

    assert again.key == first.key
    # The content type belongs to the caller's record, not to the shared bytes.
    assert again.content_type == "application/octet-stream"
    assert other.key != first.key
    assert len(files_under(store.root)) == 2


def test_files_are_sharded_by_the_first_two_byte_pairs_of_the_key(store: LocalFileStore) -> None:
    key = store.put(PHOTO, content_type="image/jpeg").key

    assert files_under(store.root) == [store.root / key[:2] / key[2:4] / key]
    assert store.path_of(key) == store.root / key[:2] / key[2:4] / key


def test_a_file_shortened_on_disk_is_rewritten_by_the_next_put(store: LocalFileStore) -> None:
    key = store.put(PHOTO, content_type="image/jpeg").key
    store.path_of(key).write_bytes(PHOTO[:5])

    store.put(PHOTO, content_type="image/jpeg")

    assert store.open(key) == PHOTO


def test_bytes_are_written_under_a_temporary_name_then_renamed(
    store: LocalFileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = hashlib.sha256(PHOTO).hexdigest()
    final = store.root / key[:2] / key[2:4] / key
    seen: dict[str, object] = {}
    real_replace = os.replace

    def replace(src: str, dst: str | Path) -> None:
        # The moment before the rename: the final name must not exist yet, the whole content
        # must already be in the temporary file beside it.
        seen["final_existed"] = final.exists()
        seen["temp"] = Path(src)
        seen["temp_content"] = Path(src).read_bytes()
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    store.put(PHOTO, content_type="image/jpeg")

    temp = seen["temp"]
    assert isinstance(temp, Path)
    assert seen["final_existed"] is False
    assert temp.parent == final.parent and temp.name.startswith(".tmp-")
    assert seen["temp_content"] == PHOTO
    assert files_under(store.root) == [final]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_leaves_neither_the_file_nor_a_temporary_one(
    store: LocalFileStore, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="No space left"):
        store.put(PHOTO, content_type="image/jpeg")
    monkeypatch.undo()

    key = hashlib.sha256(PHOTO).hexdigest()
    assert not store.exists(key)
    assert files_under(store.root) == []


BAD_KEYS = [
    "../etc/passwd",
    "../../../../../../etc/passwd",
    "/etc/passwd",
    "A" * 64,  # upper-case hex
    hashlib.sha256(PHOTO).hexdigest().upper(),
    "ab" * 31,  # 62 characters
    "a" * 65,
    "",
    "g" * 64,
    "a" * 64 + "\n",
    "ab/cd/" + "a" * 58,
    "..%2F" + "a" * 59,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_key_that_is_not_a_sha256_hex_digest_is_refused(store: LocalFileStore, key: str) -> None:
    for use in (store.open, store.exists, store.delete, store.path_of):
        with pytest.raises(InvalidFileKey) as refused:
            use(key)
        # A forged key answers like an unknown one (404), never as a server error.
        assert isinstance(refused.value, MissingFile)
        assert isinstance(refused.value, NotFound)


def test_a_key_that_is_no_string_is_refused(store: LocalFileStore) -> None:
    with pytest.raises(InvalidFileKey):
        store.open(None)  # type: ignore[arg-type]


def test_a_shard_folder_linked_out_of_the_store_is_refused(store: LocalFileStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "cd").mkdir(parents=True)
    key = "ab" + "cd" + "e" * 60
    (outside / "cd" / key).write_bytes(b"secret")
    store.root.mkdir(parents=True)
    (store.root / "ab").symlink_to(outside)

    with pytest.raises(InvalidFileKey):
        store.open(key)


def test_an_unknown_key_raises_missing_file(store: LocalFileStore) -> None:
    key = hashlib.sha256(b"never stored").hexdigest()

    assert not store.exists(key)
    with pytest.raises(MissingFile) as missing:
        store.open(key)
    assert isinstance(missing.value, NotFound)
    assert missing.value.status == 404
    assert missing.value.message == f"文件不存在：{key}"
    assert missing.value.key == key


def test_delete_removes_the_file_and_may_be_repeated(store: LocalFileStore) -> None:
    key = store.put(PHOTO, content_type="image/jpeg").key

    store.delete(key)
    store.delete(key)

    assert not store.exists(key)
    with pytest.raises(MissingFile):
        store.open(key)


def test_a_content_type_is_required(store: LocalFileStore) -> None:
    with pytest.raises(ValueError, match="content_type"):
        store.put(PHOTO, content_type="")


def test_the_default_store_is_the_settings_files_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, files_dir=None)

    store = local_file_store(settings)
    key = store.put(PHOTO, content_type="image/jpeg").key

    assert store.root == (tmp_path / "files").resolve()
    assert (tmp_path / "files" / key[:2] / key[2:4] / key).read_bytes() == PHOTO
