"""One contract suite for the artifact store: a local directory and S3 (moto on loopback)."""

from __future__ import annotations

import hashlib
import io
import random
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from keel.errors import ArtifactCorrupted, InvalidInput, NotFound, NotReady, PayloadTooLarge
from keel.store.artifacts import ArtifactStore, StoredArtifact

BUCKET = "keel-artifacts"
LIMIT = 64 << 20


@dataclass
class StoreUnderTest:
    """A store plus the backdoors a test needs to inspect or damage what it wrote."""

    store: ArtifactStore
    list_keys: Callable[[], list[str]]  # every object under the root, relative to it
    overwrite: Callable[[str, bytes], None]  # replace the bytes at a key relative to the root
    unusable: ArtifactStore  # same backend, pointed somewhere it cannot work


def address(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256}"


def payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def local_store(tmp_path: Path) -> StoreUnderTest:
    root = tmp_path / "artifacts"

    def list_keys() -> list[str]:
        if not root.exists():
            return []
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def overwrite(key: str, data: bytes) -> None:
        (root / key).write_bytes(data)

    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    return StoreUnderTest(
        ArtifactStore(str(root)), list_keys, overwrite, ArtifactStore(str(blocker / "artifacts"))
    )


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        try:
            yield endpoint
        finally:
            server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def s3_store(endpoint: str) -> StoreUnderTest:
    prefix = f"run-{uuid.uuid4().hex}"  # one bucket, a fresh prefix per test: tests stay apart
    client = s3_client(endpoint)
    options = {"client_kwargs": {"endpoint_url": endpoint}}

    def list_keys() -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        return sorted(key.removeprefix(f"{prefix}/") for key in keys)

    def overwrite(key: str, data: bytes) -> None:
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{key}", Body=data)

    return StoreUnderTest(
        ArtifactStore(f"s3://{BUCKET}/{prefix}", options),
        list_keys,
        overwrite,
        ArtifactStore("s3://no-such-bucket/artifacts", options),
    )


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def sut(request: pytest.FixtureRequest, tmp_path: Path) -> StoreUnderTest:
    if request.param == "local":
        return local_store(tmp_path)
    return s3_store(request.getfixturevalue("s3_endpoint"))


class FailingStream(io.BytesIO):
    """Hands out its bytes, then fails like a dropped connection or a killed client."""

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if not chunk:
            raise ConnectionResetError("client went away mid-upload")
        return chunk


class EndlessStream(io.BytesIO):
    """Never ends: a store that does not stop reading at the limit would never return."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        size = 1 << 16 if size is None or size < 0 else size
        self.bytes_read += size
        return b"\xab" * size


def test_round_trip_addresses_content_by_sha256(sut: StoreUnderTest) -> None:
    data = payload(3 * (1 << 20) + 17)  # several read chunks, and not a multiple of one

    stored = sut.store.put(io.BytesIO(data), max_bytes=LIMIT)

    assert stored == StoredArtifact(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    assert sut.store.exists(stored.sha256)
    assert sut.list_keys() == [address(stored.sha256)]
    with sut.store.open_verified(stored.sha256) as f:
        assert f.tell() == 0
        assert f.read() == data
    chunks = list(sut.store.iter_verified(stored.sha256, chunk_size=1 << 20))
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= 1 << 20


def test_put_bytes_is_idempotent(sut: StoreUnderTest) -> None:
    first = sut.store.put_bytes(b"weights v1", max_bytes=LIMIT)
    second = sut.store.put_bytes(b"weights v1", max_bytes=LIMIT)
    other = sut.store.put_bytes(b"weights v2", max_bytes=LIMIT)

    assert first == second
    assert other.sha256 != first.sha256
    assert sut.list_keys() == sorted([address(first.sha256), address(other.sha256)])


def test_a_stream_exactly_at_the_limit_is_accepted(sut: StoreUnderTest) -> None:
    stored = sut.store.put_bytes(b"x" * 10, max_bytes=10)

    assert stored.size == 10


def test_oversized_stream_is_refused_and_leaves_nothing(sut: StoreUnderTest) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        sut.store.put_bytes(b"x" * 11, max_bytes=10)

    assert "10 bytes" in caught.value.message
    assert "KEEL_MAX_ARTIFACT_BYTES" in caught.value.message
    assert sut.list_keys() == []
    assert not sut.store.exists(hashlib.sha256(b"x" * 11).hexdigest())


def test_an_endless_stream_stops_at_the_limit(sut: StoreUnderTest) -> None:
    stream = EndlessStream()

    with pytest.raises(PayloadTooLarge):
        sut.store.put(stream, max_bytes=100_000)

    assert stream.bytes_read <= 100_001
    assert sut.list_keys() == []


def test_empty_stream_is_refused(sut: StoreUnderTest) -> None:
    with pytest.raises(InvalidInput, match="artifact is empty"):
        sut.store.put(io.BytesIO(b""), max_bytes=LIMIT)

    assert sut.list_keys() == []


def test_a_limit_below_one_byte_is_refused(sut: StoreUnderTest) -> None:
    with pytest.raises(InvalidInput, match="max_bytes"):
        sut.store.put_bytes(b"x", max_bytes=0)


def test_tampered_bytes_are_caught_before_anything_is_returned(sut: StoreUnderTest) -> None:
    data = payload(4096)
    stored = sut.store.put_bytes(data, max_bytes=LIMIT)
    damaged = bytearray(data)
    damaged[100] ^= 0xFF
    sut.overwrite(address(stored.sha256), bytes(damaged))

    with pytest.raises(ArtifactCorrupted) as caught:
        sut.store.open_verified(stored.sha256)
    with pytest.raises(ArtifactCorrupted):
        sut.store.iter_verified(stored.sha256)  # raises on the call, before a chunk goes out

    message = caught.value.message
    assert stored.sha256 in message
    assert hashlib.sha256(damaged).hexdigest() in message
    assert f"{sut.store.url}/{address(stored.sha256)}" in message


def test_missing_artifact_is_not_found(sut: StoreUnderTest) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest()

    assert not sut.store.exists(missing)
    with pytest.raises(NotFound):
        sut.store.open_verified(missing)
    with pytest.raises(NotFound):
        sut.store.iter_verified(missing)
    with pytest.raises(NotFound):
        sut.store.delete(missing)


def test_delete_removes_the_artifact(sut: StoreUnderTest) -> None:
    stored = sut.store.put_bytes(b"retired model", max_bytes=LIMIT)

    sut.store.delete(stored.sha256)

    assert not sut.store.exists(stored.sha256)
    assert sut.list_keys() == []
    with pytest.raises(NotFound):
        sut.store.open_verified(stored.sha256)
    with pytest.raises(NotFound):
        sut.store.delete(stored.sha256)


BAD_HASHES = [
    "../../etc/passwd",
    "../" * 21 + "a",
    hashlib.sha256(b"x").hexdigest().upper(),
    hashlib.sha256(b"x").hexdigest()[:63],
    hashlib.sha256(b"x").hexdigest() + "0",
    "g" * 64,
    "",
]


@pytest.mark.parametrize("bad", BAD_HASHES)
def test_malformed_hashes_are_invalid_input(sut: StoreUnderTest, bad: str) -> None:
    with pytest.raises(InvalidInput, match="64 lowercase hexadecimal"):
        sut.store.exists(bad)
    with pytest.raises(InvalidInput):
        sut.store.open_verified(bad)
    with pytest.raises(InvalidInput):
        sut.store.iter_verified(bad)
    with pytest.raises(InvalidInput):
        sut.store.delete(bad)


def test_a_crash_mid_upload_leaves_no_object(sut: StoreUnderTest) -> None:
    data = payload(3 << 20)
    half = data[: len(data) // 2]

    with pytest.raises(ConnectionResetError):
        sut.store.put(FailingStream(half), max_bytes=LIMIT)

    assert not sut.store.exists(hashlib.sha256(data).hexdigest())
    assert not sut.store.exists(hashlib.sha256(half).hexdigest())
    assert sut.list_keys() == []  # no temporary litter either


def test_concurrent_puts_of_the_same_content_give_one_valid_object(sut: StoreUnderTest) -> None:
    data = payload(2 << 20)
    workers = 8
    start = threading.Barrier(workers)
    results: list[StoredArtifact] = []
    errors: list[BaseException] = []

    def upload() -> None:
        start.wait()
        try:
            results.append(sut.store.put_bytes(data, max_bytes=LIMIT))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert {r.sha256 for r in results} == {hashlib.sha256(data).hexdigest()}
    assert len(results) == workers
    assert sut.list_keys() == [address(results[0].sha256)]
    with sut.store.open_verified(results[0].sha256) as f:
        assert f.read() == data


def test_check_passes_on_a_usable_root_and_leaves_nothing(sut: StoreUnderTest) -> None:
    sut.store.check()

    assert sut.list_keys() == []


def test_check_names_the_store_that_is_not_ready(sut: StoreUnderTest) -> None:
    with pytest.raises(NotReady) as caught:
        sut.unusable.check()

    assert sut.unusable.url in caught.value.message


def test_repr_and_errors_never_show_credentials() -> None:
    secret = "wJalrXUtnFEMI-do-not-print"
    store = ArtifactStore(
        "s3://no-such-bucket/artifacts",
        {
            "key": "AKIAEXAMPLE",
            "secret": secret,
            "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{free_port()}"},
            "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
        },
    )

    assert repr(store) == "ArtifactStore('s3://no-such-bucket/artifacts')"
    with pytest.raises(NotReady) as caught:
        store.check()
    assert secret not in str(caught.value)
    assert "AKIAEXAMPLE" not in str(caught.value)
