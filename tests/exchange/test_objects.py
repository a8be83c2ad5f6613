"""The object stores behind one protocol: a local folder and a real S3-compatible server (SeaweedFS, keys enforced).

Expected bytes, keys and URIs are the ones each test writes; the S3 side is checked through the server's own client.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange.errors import StoreConfigError, StoreUnavailableError
from exchange.objects import LocalObjectStore, ObjectStore, open_object_store
from exchange.s3_store import S3ObjectStore
from tests.exchange.conftest import Stores
from tests.seaweed import S3Server
from waterhub.settings import Settings


@pytest.fixture
def store(stores: Stores) -> ObjectStore:
    return stores.new("hub")


def test_an_object_reads_back_as_written_and_is_replaced_whole(store: ObjectStore) -> None:
    key = "staging/batch-1/samples.raw.ndjson"

    uri = store.put(key, b'{"a": 1}\n')
    store.put(key, b'{"b": 2}\n')

    assert uri == store.uri(key)
    assert store.get(key) == b'{"b": 2}\n'
    assert store.exists(key)
    assert not store.exists("staging/batch-1/other.raw.ndjson")


def test_a_large_object_streams_back_in_chunks_of_the_size_asked(store: ObjectStore) -> None:
    body = bytes(range(256)) * 40  # 10,240 bytes
    store.put("snapshots/x/v1/000000000001.parquet", body)

    chunks = list(store.stream("snapshots/x/v1/000000000001.parquet", chunk_bytes=4096))

    assert b"".join(chunks) == body
    assert [len(chunk) for chunk in chunks] == [4096, 4096, 2048]


def test_list_yields_every_key_under_a_prefix_in_key_order(store: ObjectStore) -> None:
    keys = ["snapshots/a/v1/000000000002.parquet", "snapshots/a/v1/000000000010.parquet", "snapshots/b/v1/x.json"]
    for key in reversed(keys):
        store.put(key, key.encode())

    assert list(store.list("snapshots/a/")) == keys[:2]
    assert list(store.list("snapshots/")) == keys
    assert list(store.list("snapshots/a/v1/0000000000")) == keys[:2]
    assert list(store.list("staging/")) == []


def test_a_missing_object_raises_file_not_found_naming_it(store: ObjectStore) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        store.get("snapshots/none.parquet")

    assert str(caught.value.filename).endswith("snapshots/none.parquet")


@pytest.mark.parametrize("key", ["../outside", "a/../../outside"])
def test_a_key_that_leaves_the_store_is_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError, match="object key"):
        store.put(key, b"x")


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.parametrize(
    ("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)], ids=["umask-022", "umask-027", "umask-077"]
)
@pytest.mark.usefixtures("umask")
def test_local_objects_are_readable_by_others_as_the_umask_allows(tmp_path: Path, mask: int, mode: int) -> None:
    """Other services (a web server, a backup job) read snapshots: 0644 less the umask, as any file written."""
    os.umask(mask)
    store = LocalObjectStore(tmp_path)

    store.put("snapshots/a.parquet", b"x")

    assert stat.S_IMODE((tmp_path / "snapshots/a.parquet").stat().st_mode) == mode
    assert sorted(path.name for path in (tmp_path / "snapshots").iterdir()) == ["a.parquet"]  # no temporary left


# --- S3 only ------------------------------------------------------------------------------------------------------


def settings_for(server: S3Server, url: str, *, access_key: str | None, secret_key: str | None) -> Settings:
    return Settings(object_store_url=url, object_store_access_key=access_key, object_store_secret_key=secret_key)


def open_from(settings: Settings) -> ObjectStore:
    return open_object_store(settings.resolved_object_store_url, settings.object_store_credentials)


def test_opening_an_s3_store_creates_its_bucket(s3_server: S3Server) -> None:
    client = s3_server.client()
    assert not client.bucket_exists("fresh-bucket")
    settings = settings_for(
        s3_server,
        s3_server.url("fresh-bucket", "hub"),
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )

    store = open_from(settings)
    uri = store.put("a/b.json", b"{}")
    open_from(settings)  # a second worker opening the same store finds the bucket there

    assert isinstance(store, S3ObjectStore)
    assert uri == "s3://fresh-bucket/hub/a/b.json"
    assert client.get_object("fresh-bucket", "hub/a/b.json").read() == b"{}"


@pytest.mark.parametrize(
    ("which", "named"),
    [
        ("secret", r"refused the secret key; check WATERHUB_OBJECT_STORE_SECRET_KEY"),
        ("access", r"does not know the access key; check WATERHUB_OBJECT_STORE_ACCESS_KEY"),
        ("none", r"no access key is set; set WATERHUB_OBJECT_STORE_ACCESS_KEY and WATERHUB_OBJECT_STORE_SECRET_KEY"),
    ],
)
def test_wrong_keys_fail_naming_the_setting_and_never_the_secret(s3_server: S3Server, which: str, named: str) -> None:
    wrong_secret = "wrong-" + s3_server.secret_key[::-1]
    access_key, secret_key = {
        "secret": (s3_server.access_key, wrong_secret),
        "access": ("nobody-" + s3_server.access_key, s3_server.secret_key),
        "none": (None, None),
    }[which]
    settings = settings_for(s3_server, s3_server.url("hub", "p"), access_key=access_key, secret_key=secret_key)

    with pytest.raises(StoreConfigError, match=named) as caught:
        open_from(settings)

    message = str(caught.value)
    assert f"s3://hub/p/ at {s3_server.endpoint}" in message
    assert s3_server.secret_key not in message
    assert wrong_secret not in message


def test_an_unreachable_endpoint_is_unavailable_not_misconfigured(s3_server: S3Server, dead_port: int) -> None:
    url = f"s3://hub?endpoint=http://127.0.0.1:{dead_port}"

    with pytest.raises(StoreUnavailableError, match=rf"object store s3://hub/ at http://127.0.0.1:{dead_port}: open"):
        S3ObjectStore(url, s3_server.credentials())


def test_keys_in_the_url_are_refused_without_echoing_them(s3_server: S3Server) -> None:
    url = f"s3://{s3_server.access_key}:{s3_server.secret_key}@hub/p?endpoint={s3_server.endpoint}"

    with pytest.raises(StoreConfigError, match="keys in settings, not in its URL") as caught:
        S3ObjectStore(url)

    assert s3_server.secret_key not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("s3:///prefix", "name the bucket"),
        ("s3://hub/p?endpoint=ftp://127.0.0.1:1", re.escape("is not http(s)://host[:port]")),
        ("s3://hub/p?endpoint=http://127.0.0.1:1/path", re.escape("is not http(s)://host[:port]")),
        ("s3://hub/p?secure=1", re.escape("unknown parameters ['secure']")),
    ],
)
def test_a_malformed_s3_url_is_refused_before_any_call(url: str, complaint: str) -> None:
    with pytest.raises(StoreConfigError, match=complaint):
        S3ObjectStore(url)


def test_a_placeholder_secret_key_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="set WATERHUB_OBJECT_STORE_SECRET_KEY to the real one"):
        Settings(data_dir=tmp_path, object_store_secret_key="changeme")
