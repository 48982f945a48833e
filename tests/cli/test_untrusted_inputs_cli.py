"""Inputs from outside stay bounded: a zip bomb given to verify-proof, a huge body posted to
a real witness process on 127.0.0.1."""

from __future__ import annotations

import io
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tracemalloc
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from testkit import free_port

from lake.contract import LakeError, UsageError
from lake.log import NoteSigner
from lake.proofs import MAX_MEMBERS, check_pack

if TYPE_CHECKING:  # fixtures' types only; see tests/cli/cli_testkit.py
    from cli_testkit import Run

AUDITLAKE = shutil.which("auditlake", path=os.path.dirname(sys.executable))
BOMB_BYTES = 50 << 20


def _log_key() -> str:
    return NoteSigner("log.example/l1", Ed25519PrivateKey.generate()).verifier_key.encode()


def _bomb(*, declared: int | None = None) -> bytes:
    """A pack whose one proof is 50 MB of zeros deflated (~50 KB on disk); `declared`
    rewrites the size its headers state, as a hostile pack would."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("proofs/a.json", "w", force_zip64=False) as fh:
            zero = bytes(1 << 20)
            for _ in range(BOMB_BYTES >> 20):
                fh.write(zero)
        zf.writestr("events.jsonl", b"")
    data = bytearray(buf.getvalue())
    if declared is not None:
        # Local header: uncompressed size at offset 22; central directory entry: at 24.
        struct.pack_into("<I", data, 22, declared)
        central = data.rfind(b"PK\x01\x02", 0, data.rfind(b"events.jsonl"))
        struct.pack_into("<I", data, central + 24, declared)
    return bytes(data)


@pytest.mark.parametrize("declared", [None, 100], ids=["honest-header", "lying-header"])
def test_a_zip_bomb_is_refused_with_bounded_memory(declared: int | None) -> None:
    pack = _bomb(declared=declared)
    assert len(pack) < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(LakeError):
            check_pack(pack, [])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak  # the inflated 50 MB never sat in memory


def test_a_pack_with_too_many_members_is_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(MAX_MEMBERS + 1):
            zf.writestr(f"proofs/{i}.json", b"")
    with pytest.raises(UsageError, match="more than"):
        check_pack(buf.getvalue(), [])


def test_verify_proof_refuses_a_zip_bomb_in_one_line(run: Run, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(_bomb())
    result = run("verify-proof", bomb, "--key", _log_key())
    result.assert_usage_error("proofs/a.json", "inflates beyond")
    assert len(result.stderr_lines) == 1, result


@pytest.fixture
def witness_url(tmp_path: Path) -> Iterator[str]:
    assert AUDITLAKE
    made = subprocess.run(
        [AUDITLAKE, "witness", "keygen", "--name", "w.example/w1",
         "--out", str(tmp_path / "w.key")],
        capture_output=True, check=True,
    )  # fmt: skip
    assert made.returncode == 0
    port = free_port()
    log = (tmp_path / "witness.log").open("wb")
    proc = subprocess.Popen(
        [AUDITLAKE, "witness", "serve", "--name", "w.example/w1", "--key-file",
         str(tmp_path / "w.key"), "--state", str(tmp_path / "state"), "--log-key", _log_key(),
         "--port", str(port)],
        stdout=log, stderr=log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # until it answers (or 300 refused connections)
            try:
                urllib.request.urlopen(url + "/", timeout=5).read()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "witness.log").read_text()
                select.select([], [], [], 0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _post_huge(url: str, *, chunked: bool) -> tuple[bytes, int]:
    """POST 400 MB to /add-checkpoint in 64 KB pieces, stopping as soon as the server
    answers or hangs up; returns (the answer, bytes sent)."""
    host, port = url.removeprefix("http://").split(":")
    total, piece = 400 << 20, bytes(64 << 10)
    head = f"POST /add-checkpoint HTTP/1.1\r\nHost: {host}\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {total}\r\n\r\n"
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer, sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_the_witness_refuses_a_huge_body_without_reading_it(
    witness_url: str, chunked: bool
) -> None:
    answer, sent = _post_huge(witness_url, chunked=chunked)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 64 << 20, sent  # the server hung up long before the 400 MB were sent
    # And it still serves.
    assert urllib.request.urlopen(witness_url + "/", timeout=30).status == 200
