"""docs/ says what the code does: its examples run against the real `auditlake` command.

docs/ is the contract that users and outside verifiers rely on, so its examples are
executed rather than trusted:

- the Python block of docs/verifying.md (a verifier written with hashlib and
  `cryptography` only) is run, as the page says to run it, on a proof that the real
  `auditlake prove` made from a real lake: it must print OK for every event, and report
  FAIL once any single byte of the proof is changed;
- every ```json valid block of docs/events.md is ingested by the real CLI and accepted;
  every ```json invalid block is rejected with exactly the lines of the ```text block
  that follows it;
- no tracked file points at material outside the repository, and every relative link of
  docs/ and README.md (with its #anchor) resolves.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from testkit import AUDITLAKE, TIMEOUT, Result, clean_env

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.M)
# What the verifier script may import: the guide promises nothing but these.
ALLOWED_IMPORTS = {"base64", "hashlib", "json", "sys", "datetime", "pathlib", "cryptography"}
TENANT = "acme"


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown page: its info string and its text."""

    info: str
    text: str


def blocks(page: Path) -> list[Block]:
    return [Block(m.group(1).strip(), m.group(2)) for m in FENCE.finditer(page.read_text())]


def one_line(block: Block) -> str:
    """A JSON block as `ingest -` input: a pretty-printed object joined into one line
    (its strings hold no newline), JSON Lines as they are. Never re-serialised, so a
    repeated key reaches the validator as written."""
    try:
        json.loads(block.text)
    except json.JSONDecodeError:
        return block.text
    return " ".join(line.strip() for line in block.text.splitlines()) + "\n"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


# -- the real command on a lake of the examples --------------------------------------------


@dataclass(frozen=True)
class DocsLake:
    base: Path
    env: dict[str, str]

    def run(self, *args: str, input: str | None = None) -> Result:
        assert AUDITLAKE, "the auditlake console script is not installed beside this Python"
        proc = subprocess.run(
            [AUDITLAKE, *args],
            input=None if input is None else input.encode(),
            capture_output=True,
            env=self.env,
            cwd=self.base,
            timeout=TIMEOUT,
            check=False,
        )
        result = Result(args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())
        assert "Traceback" not in result.stderr, result.stderr
        return result


def examples(marker: str) -> list[Block]:
    return [b for b in blocks(DOCS / "events.md") if b.info == f"json {marker}"]


@pytest.fixture(scope="module")
def docs_lake(tmp_path_factory: pytest.TempPathFactory) -> DocsLake:
    """A lake made by `auditlake init`, in a config home of its own."""
    base = tmp_path_factory.mktemp("docs")
    lake = DocsLake(base, clean_env(base / "home", base / "lake"))
    made = lake.run("init", "--name", "docs")
    assert made.returncode == 0, made
    return lake


@pytest.fixture(scope="module")
def ingested(docs_lake: DocsLake) -> list[tuple[Block, Result]]:
    """Each valid example of docs/events.md, ingested on its own through stdin."""
    return [
        (b, docs_lake.run("ingest", "-", "--output-format", "json", input=one_line(b)))
        for b in examples("valid")
    ]


def test_events_page_marks_every_json_example() -> None:
    """Every JSON block says whether it is valid, and each invalid one shows its errors."""
    found = blocks(DOCS / "events.md")
    assert len(examples("valid")) >= 5 and len(examples("invalid")) >= 5
    for i, block in enumerate(found):
        if block.info.startswith("json"):
            assert block.info in ("json valid", "json invalid"), block.info
        if block.info == "json invalid":
            assert i + 1 < len(found) and found[i + 1].info == "text", block.text


def test_valid_examples_are_accepted(ingested: list[tuple[Block, Result]]) -> None:
    categories = set()
    for block, result in ingested:
        assert result.returncode == 0, (block.text, result)
        report = result.json()
        assert (report["appended"], report["rejected"]) == (1, 0), (block.text, report)
        categories.add(json.loads(block.text)["category"])
    assert categories == {
        "authentication",
        "admin_action",
        "key_change",
        "flag_change",
        "account_recovery",
    }


@pytest.mark.parametrize("index", range(len(examples("invalid"))))
def test_invalid_examples_are_rejected_as_shown(docs_lake: DocsLake, index: int) -> None:
    found = blocks(DOCS / "events.md")
    invalid = [i for i, b in enumerate(found) if b.info == "json invalid"]
    block, shown = found[invalid[index]], found[invalid[index] + 1]
    result = docs_lake.run("ingest", "-", input=one_line(block))
    expected = shown.text.splitlines()
    assert result.returncode == 2, result
    assert result.stdout == "", result
    summary = f"auditlake: stdin: {len(expected)} problem(s); nothing was written"
    assert result.stderr_lines == [*expected, summary], result.stderr


# -- docs/verifying.md: the hand verifier ---------------------------------------------------


@pytest.fixture(scope="module")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ```python block of docs/verifying.md, saved as the page says."""
    code = [b.text for b in blocks(DOCS / "verifying.md") if b.info == "python"]
    assert len(code) == 1, "docs/verifying.md must hold exactly one python block"
    path = tmp_path_factory.mktemp("verifier") / "check_proof.py"
    path.write_text(code[0])
    return path


def test_verifier_needs_only_hashlib_and_cryptography(verifier: Path) -> None:
    tree = ast.parse(verifier.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= ALLOWED_IMPORTS, imported
    page = (DOCS / "verifying.md").read_text()
    assert "python check_proof.py proof.json " in page  # how the test below runs it


def check(verifier: Path, proof: dict[str, Any], key: str, tmp: Path) -> Result:
    """`python check_proof.py proof.json KEY`, isolated (-I: nothing of ours importable
    from the working directory or PYTHONPATH)."""
    path = tmp / "proof.json"
    path.write_text(json.dumps(proof))
    args = ("-I", str(verifier), str(path), key)
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, cwd=tmp, timeout=TIMEOUT, check=False
    )
    return Result(args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


@pytest.fixture(scope="module")
def proofs(docs_lake: DocsLake, ingested: list[tuple[Block, Result]]) -> list[dict[str, Any]]:
    """`auditlake prove` of every event of the tenant (every leaf position of its tree)."""
    assert all(r.returncode == 0 for _, r in ingested)
    found = docs_lake.run("search", "--tenant", TENANT, "--limit", "0", "--format", "jsonl")
    assert found.returncode == 0, found
    ids = [json.loads(line)["event_id"] for line in found.stdout.splitlines()]
    assert len(ids) >= 4
    out = []
    for event_id in ids:
        made = docs_lake.run("prove", event_id, "--tenant", TENANT)
        assert made.returncode == 0, made
        out.append(made.json())
    return out


@pytest.fixture(scope="module")
def key(docs_lake: DocsLake) -> str:
    exported = docs_lake.run("keys", "export")
    assert exported.returncode == 0, exported
    return exported.stdout.strip()


def test_verifier_accepts_every_real_proof(
    verifier: Path, proofs: list[dict[str, Any]], key: str, tmp_path: Path
) -> None:
    assert sorted(p["leaf_index"] for p in proofs) == list(range(proofs[0]["tree_size"]))
    for proof in proofs:
        result = check(verifier, proof, key, tmp_path)
        assert result.returncode == 0, result
        assert result.stdout.startswith(f"OK: event {proof['event_id']} is leaf "), result


def flip_leaf(proof: dict[str, Any]) -> None:
    leaf = bytearray(base64.b64decode(proof["leaf"]))
    leaf[len(leaf) // 2] ^= 0x01
    proof["leaf"] = base64.b64encode(bytes(leaf)).decode()


def flip_event(proof: dict[str, Any]) -> None:
    actor = proof["event"]["actor_id"]
    proof["event"]["actor_id"] = ("n" if actor[0] == "m" else "m") + actor[1:]


def flip_path(proof: dict[str, Any]) -> None:
    first = bytearray.fromhex(proof["inclusion_path"][0])
    first[0] ^= 0x01
    proof["inclusion_path"][0] = first.hex()


def flip_root(proof: dict[str, Any]) -> None:
    origin, size, root, rest = proof["checkpoint"].split("\n", 3)
    raw = bytearray(base64.b64decode(root))
    raw[0] ^= 0x01
    proof["checkpoint"] = "\n".join([origin, size, base64.b64encode(bytes(raw)).decode(), rest])


def flip_signature(proof: dict[str, Any]) -> None:
    text, _, sig = proof["checkpoint"].rpartition("\n\n")
    dash, name, b64 = sig.strip().split(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 0x01
    proof["checkpoint"] = f"{text}\n\n{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n"


def flip_index(proof: dict[str, Any]) -> None:
    proof["leaf_index"] ^= 1
    proof["event"]["seq"] = proof["leaf_index"]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (flip_leaf, "event does not encode to the proven leaf"),
        (flip_event, "event does not encode to the proven leaf"),
        (flip_path, "inclusion path does not lead to the signed root"),
        (flip_root, "checkpoint signature does not verify"),
        (flip_signature, "checkpoint signature does not verify"),
        (flip_index, None),  # the path then leads elsewhere, or nowhere
    ],
)
def test_verifier_fails_after_one_changed_byte(
    verifier: Path,
    proofs: list[dict[str, Any]],
    key: str,
    tmp_path: Path,
    tamper: Any,
    reason: str | None,
) -> None:
    for original in proofs:
        proof = json.loads(json.dumps(original))
        tamper(proof)
        result = check(verifier, proof, key, tmp_path)
        assert result.returncode == 1, (tamper.__name__, result)
        assert result.stdout.startswith("FAIL: "), (tamper.__name__, result)
        if reason is not None:
            assert result.stdout.strip() == f"FAIL: {reason}", (tamper.__name__, result)


def test_verifier_refuses_another_key(
    verifier: Path, proofs: list[dict[str, Any]], key: str, tmp_path: Path
) -> None:
    """A key of the same name but other bytes signs nothing here."""
    name, key_id, _ = key.split("+", 2)
    other = base64.b64encode(b"\x01" + bytes(range(32))).decode()
    result = check(verifier, proofs[0], f"{name}+{key_id}+{other}", tmp_path)
    assert result.returncode == 1, result
    assert result.stdout.startswith("FAIL: "), result


def test_log_format_examples_are_a_real_signed_checkpoint() -> None:
    """The checkpoint and verifier key shown in docs/log-format.md belong together: the
    key ID is the one the spec derives, and the signature verifies over the note text."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    found = [b.text for b in blocks(DOCS / "log-format.md") if b.info == ""]
    note = next(t for t in found if t.startswith("auditlake/"))
    key = next(t.strip() for t in found if re.fullmatch(r"\S+\+[0-9a-f]{8}\+\S+\n", t))
    name, key_id, key_b64 = key.split("+", 2)
    raw = base64.b64decode(key_b64)
    assert hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() == key_id
    text, _, signature = note.rpartition("\n\n")
    dash, signer, sig_b64 = signature.strip().split(" ")
    sig = base64.b64decode(sig_b64)
    assert (dash, signer, sig[:4].hex()) == ("\u2014", name, key_id)
    Ed25519PublicKey.from_public_bytes(raw[1:]).verify(sig[4:], (text + "\n").encode())
    origin, size, root, extension = text.splitlines()
    assert origin.startswith("auditlake/") and int(size) > 0 and len(base64.b64decode(root)) == 32
    assert re.fullmatch(r"time \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", extension)


# -- the repository stands on its own -----------------------------------------------------


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    docs = [p.relative_to(ROOT).as_posix() for p in DOCS.glob("*.md")]
    names = sorted({*filter(None, listed.split("\0")), *docs, "tests/test_docs.py"})
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def test_no_tracked_file_points_outside_the_repository() -> None:
    # Spelt in pieces so that this file does not match itself.
    needles = [s.encode() for s in ("DESIGN" + ".md", "FACTS" + ".md", "STYLE" + ".md")]
    needles.append(b"../" + b"shared")
    offenders = [
        f"{path.relative_to(ROOT)}: {needle.decode()}"
        for path in tracked_files()
        for needle in needles
        if needle in path.read_bytes()
    ]
    assert not offenders


def markdown_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def test_docs_index_lists_every_page() -> None:
    index = (DOCS / "README.md").read_text()
    for page in sorted(DOCS.glob("*.md")):
        if page.name != "README.md":
            assert f"]({page.name})" in index, page.name
    assert "](docs/README.md)" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.is_file(), f"{page.name}: {target} names no file"
        if anchor and file.suffix == ".md":
            anchors = {slug(h) for h in HEADING.findall(file.read_text())}
            assert anchor in anchors, f"{page.name}: {target}: no such heading"
