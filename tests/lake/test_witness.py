"""The witness's rules on real checkpoints: first sight, extension, rollback, fork."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lake.contract import validate
from lake.log import NoteSigner, VerifierKey, parse_note
from lake.proofs import latest_checkpoint, prove_consistency
from lake.storage import Lake, paths
from lake.witness import (
    CosignatureStore,
    Cosigner,
    CosignerKey,
    Witness,
    WitnessError,
    cosignatures_in,
    encode_request,
)
from lake.write import append


def _more(lake: Lake, signer: NoteSigner, tag: str, n: int = 5) -> None:
    events = [
        {"tenant": "contoso", "time": f"2026-11-27T12:00:0{i}Z", "category": "authentication",
         "action": "login", "outcome": "success", "actor": {"id": f"{tag}{i}@x"}}
        for i in range(n)
    ]  # fmt: skip
    append(lake, validate(events, namespace=tag.encode()).table, signer)


def _request(lake: Lake, old: int) -> bytes:
    cp = latest_checkpoint(lake, "contoso")
    proof = []
    if 0 < old < cp["tree_size"]:
        proof = [
            bytes.fromhex(h) for h in prove_consistency(lake, "contoso", old)["consistency_path"]
        ]
    return encode_request(old, proof, cp["note"])


@pytest.fixture
def witness(tmp_path: Path, lake_copy: tuple[Lake, NoteSigner, list[VerifierKey]]) -> Witness:
    _, signer, _ = lake_copy
    return Witness(tmp_path / "state", Cosigner("w.example/w1", Ed25519PrivateKey.generate()),
                   [signer.verifier_key])  # fmt: skip


def test_key_id_and_vkey_follow_c2sp(witness: Witness) -> None:
    key = witness.cosigner.key
    want = hashlib.sha256(b"w.example/w1\n\x04" + key.public_key).digest()[:4]
    assert key.key_id == want
    assert CosignerKey.parse(key.encode()) == key
    for _ in range(20):  # base64 keys often contain '+', the separator of the fields
        other = Cosigner("w.example/x", Ed25519PrivateKey.generate()).key
        assert CosignerKey.parse(other.encode()) == other
    line = witness.cosigner.cosign("o\n1\nAAAA\n", timestamp=1679315147)
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[4:12] == (1679315147).to_bytes(8, "big") and len(raw) == 76
    assert key.verify("o\n1\nAAAA\n", line) == 1679315147
    assert key.verify("o\n2\nAAAA\n", line) is None  # another body


def test_first_sight_then_extension_then_rollback_and_fork(
    witness: Witness, lake_copy: tuple[Lake, NoteSigner, list[VerifierKey]], tmp_path: Path
) -> None:
    lake, signer, _ = lake_copy
    line = witness.add_checkpoint(_request(lake, 0))
    cp1 = latest_checkpoint(lake, "contoso")
    note = cp1["note"] + line
    assert cosignatures_in(note, [witness.cosigner.key]) != {}
    size1 = cp1["tree_size"]
    # The same tree head again: fine (idempotent), no proof needed.
    witness.add_checkpoint(_request(lake, size1))
    # A stale `old`: 409 with the witness's size, so the log can prove from there.
    with pytest.raises(WitnessError) as stale:
        witness.add_checkpoint(_request(lake, 0))
    assert stale.value.status == 409 and stale.value.body.strip() == str(size1)
    # Extension with a valid consistency proof.
    import shutil

    shutil.copytree(lake.base, tmp_path / "fork")
    _more(lake, signer, "a")
    witness.add_checkpoint(_request(lake, size1))
    size2 = latest_checkpoint(lake, "contoso")["tree_size"]
    seen = witness.latest(lake.origin("contoso"))
    assert seen is not None and seen.size == size2
    # Rollback: the old, smaller tree head again.
    with pytest.raises(WitnessError) as rollback:
        witness.add_checkpoint(encode_request(size2, [], cp1["note"]))
    assert rollback.value.status == 409
    # Fork: another history of the same size from a copy taken before the extension.
    fork = Lake.open(tmp_path / "fork")
    _more(fork, signer, "b")
    assert latest_checkpoint(fork, "contoso")["tree_size"] == size2
    with pytest.raises(WitnessError) as forked:
        witness.add_checkpoint(_request(fork, size2))
    assert forked.value.status == 422 and "fork" in str(forked.value)
    # A bad consistency proof is refused too.
    _more(lake, signer, "c")
    req = _request(lake, size2).replace(b"old ", b"old ", 1)
    head, rest = req.split(b"\n", 1)
    lines = rest.split(b"\n")
    lines[0] = base64.b64encode(b"\0" * 32)
    with pytest.raises(WitnessError) as bad:
        witness.add_checkpoint(head + b"\n" + b"\n".join(lines))
    assert bad.value.status == 422


def test_the_cosignature_store_keeps_its_bytes(
    witness: Witness, lake_copy: tuple[Lake, NoteSigner, list[VerifierKey]]
) -> None:
    lake, _, _ = lake_copy
    cp = latest_checkpoint(lake, "contoso")
    size, body = cp["tree_size"], parse_note(cp["note"])[0]
    line = witness.add_checkpoint(_request(lake, 0)).strip()
    me = witness.cosigner.name
    store = CosignatureStore.load(lake, "contoso")
    assert store.sizes == {}
    store.add(size, body, me, line)
    store.add(1, "older body\n", "w2", "— w2 AAAA")
    store.save(lake)
    # The file exactly as the code before the typed store wrote it: sizes ascending as
    # strings, each {"body", "cosignatures"}, two-space indent. An old lake's reads back.
    old = {
        "1": {"body": "older body\n", "cosignatures": {"w2": "— w2 AAAA"}},
        str(size): {"body": body, "cosignatures": {me: line}},
    }
    written = lake.read_bytes(paths.cosignatures_file("contoso"))
    assert written == orjson.dumps(old, option=orjson.OPT_INDENT_2)
    again = CosignatureStore.load(lake, "contoso")
    again.save(lake)
    assert lake.read_bytes(paths.cosignatures_file("contoso")) == written
    assert again.sizes[size].lines == {me: line}
    assert again.last_cosigned(me, size) == size and again.last_cosigned(me, size - 1) == 0
    assert again.last_cosigned("w2", size) == 1


def test_a_checkpoint_from_an_unknown_log_is_refused(witness: Witness, tmp_path: Path) -> None:
    from lake.log import generate_signer

    other = generate_signer("intruder")
    stranger = Lake.init(tmp_path / "s", "s", other.verifier_key.encode())
    _more(stranger, other, "s")
    with pytest.raises(WitnessError) as refused:
        witness.add_checkpoint(_request(stranger, 0))
    assert refused.value.status == 403
