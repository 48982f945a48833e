"""What a user of the code before the redesign (issue 18) relies on, attacked from outside.

The CLI's outputs, exit codes and state files were compared by hand with commit bd231af on
the same lakes (see the red-team report); these tests keep the breaks found, and the
compatibility of config-home files the old code wrote, from coming back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ingest.tokens import TokenStore
from lake.witness import CosignerKey, WitnessConfig, load_witnesses, save_witnesses

ROOT = Path(__file__).resolve().parent.parent

# witnesses.json as the code before the redesign wrote it (orjson, indent 2, no final newline).
OLD_WITNESSES = (
    b'[\n  {\n    "url": "http://127.0.0.1:18941",\n'
    b'    "key": "w.example/w1+b1797b6a+BLEKrDihRxqRfnMskYcFDlNy0y4k4ks+Zmjs32AShAK2"\n  }\n]'
)
# tokens.json as the code before the redesign wrote it (json.dump, indent 2, no final newline).
OLD_TOKENS = (
    b'{\n  "47e5b4d0d64055f6a9291f94c8188b8a7c04e8d48a022013887f0b197f740cda": {\n'
    b'    "name": "x",\n    "tenants": [\n      "contoso"\n    ],\n'
    b'    "created_at": "2026-12-08T06:18:37Z"\n  }\n}'
)


def private_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return home


def write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def test_open_without_the_lake_extra_names_the_extra_to_install() -> None:
    # An SDK-only install (`pip install auditlake`): the lake's packages are not there. The
    # console script names the extra; `auditlake.open` in a notebook must too, instead of
    # "import of pyarrow halted" from deep inside lake.contract.
    script = (
        "import sys\n"
        "for name in ('pyarrow', 'deltalake', 'numpy', 'duckdb', 'polars'):\n"
        "    sys.modules[name] = None\n"
        "import auditlake\n"
        "try:\n"
        "    auditlake.open('somewhere')\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc.name, '|', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    name, _, message = done.stdout.strip().partition(" | ")
    assert name in {"pyarrow", "deltalake", "numpy", "duckdb", "polars"}
    assert message.startswith("auditlake.open needs ")
    assert message.endswith("pip install 'auditlake[lake]'")


def test_a_witness_list_written_before_the_redesign_is_read_and_rewritten_alike(
    tmp_path: Path,
) -> None:
    home = private_home(tmp_path)
    path = home / "witnesses.json"
    write_private(path, OLD_WITNESSES)
    (witness,) = load_witnesses(home)
    assert witness.url == "http://127.0.0.1:18941"
    assert witness.name == "w.example/w1"
    save_witnesses(home, [WitnessConfig(witness.url, CosignerKey.parse(witness.key.encode()))])
    # Same document, same key order and indentation; only a final newline was added (the one
    # private-JSON writer ends every file with one, as access.json always did).
    assert path.read_bytes() == OLD_WITNESSES + b"\n"


def test_a_token_file_written_before_the_redesign_still_admits_its_token(tmp_path: Path) -> None:
    home = private_home(tmp_path)
    write_private(home / "tokens.json", OLD_TOKENS)
    store = TokenStore(home)
    grant = store.grants()["47e5b4d0d64055f6a9291f94c8188b8a7c04e8d48a022013887f0b197f740cda"]
    assert (grant.name, grant.tenants, grant.created_at) == (
        "x",
        frozenset({"contoso"}),
        "2026-12-08T06:18:37Z",
    )
    store.create(["acme"], name="y")  # a new token keeps the old entries in the old layout
    written = (home / "tokens.json").read_bytes()
    assert written.startswith(OLD_TOKENS[:-2])
    assert json.loads(written)[next(iter(json.loads(OLD_TOKENS)))] == {
        "name": "x",
        "tenants": ["contoso"],
        "created_at": "2026-12-08T06:18:37Z",
    }
