"""What docs/configuration.md and the README state that a test can check, checked as
written: the two-peer example's files pass ``check-config``, the Python example
validates (``tests/typing`` type-checks it), the ``check-config`` console output is
what the command prints, the limit defaults are the code's, every key of every TOML
block is documented, and the exit-code table is what the commands return.

The README's curl examples run in ``tests/test_readme_examples.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peer.cli import main as cli
from peer.config import Limits, Partner, PeerConfig, load_config
from tests.peers import make_pair
from tests.timing import seconds

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
# The docs whose TOML blocks must use documented keys only.
TOML_DOCS = [README, CONFIGURATION, ROOT / "docs" / "security.md", ROOT / "docs" / "operations.md"]

TOML_BLOCK = re.compile(r"```toml\n(.*?)```", re.DOTALL)
PLACEHOLDER = re.compile(r"<sha256 of (\w+)>")


def doc_blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.DOTALL)


def config_files() -> dict[str, str]:
    """The two-peer example's files by name: ``{"a.toml": text, "b.toml": text}``."""
    text = CONFIGURATION.read_text()
    found = dict(re.findall(r"`(\w+\.toml)`:\n\n```toml\n(.*?)```", text, re.DOTALL))
    assert set(found) == {"a.toml", "b.toml"}, found.keys()
    return found


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the example's keys (a.jwks.json, b.public.json, ...) and tokens."""
    make_pair(tmp_path)
    monkeypatch.setenv("A_TO_B_TOKEN", "token-a-presents-to-b")
    monkeypatch.setenv("B_TO_A_TOKEN", "token-b-presents-to-a")
    monkeypatch.setenv("B_TOKEN", "token-a-presents-to-b")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _hash_placeholders(text: str) -> str:
    """``<sha256 of NAME>`` replaced as the doc says: the hex SHA-256 of $NAME's token."""
    tokens = {"A_TO_B_TOKEN": "token-a-presents-to-b", "B_TO_A_TOKEN": "token-b-presents-to-a"}
    return PLACEHOLDER.sub(lambda m: hashlib.sha256(tokens[m[1]].encode()).hexdigest(), text)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_two_peer_example_runs_and_passes_check_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """configuration.md "Two peers on loopback": its shell block makes the keys and the
    two digests, pasted into the files they go into both pass check-config (secrets
    resolved) with the output the doc shows; a dials b's listen address; the two nodes
    in one folder have a local interface each."""
    script = doc_blocks(CONFIGURATION, "sh")[0] + 'echo "$A_TO_B_TOKEN $B_TO_A_TOKEN"\n'
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds(60),
    )
    assert result.returncode == 0, result.stderr
    into_b, into_a, tokens = result.stdout.splitlines()
    a_to_b, b_to_a = tokens.split()
    monkeypatch.setenv("A_TO_B_TOKEN", a_to_b)
    monkeypatch.setenv("B_TO_A_TOKEN", b_to_a)
    digests = {"A_TO_B_TOKEN": into_b, "B_TO_A_TOKEN": into_a}
    for name, text in config_files().items():
        (tmp_path / name).write_text(PLACEHOLDER.sub(lambda m: digests[m[1]], text))
        assert cli(["check-config", "-c", str(tmp_path / name)]) == 0
    console = doc_blocks(CONFIGURATION, "console")[0]
    ok_line = console.split("$ setpeer check-config -c a.toml\n")[1].splitlines()[0]
    assert capsys.readouterr().out.splitlines() == [ok_line, ok_line]
    a, b = load_config(tmp_path / "a.toml"), load_config(tmp_path / "b.toml")
    assert a.partners[0].endpoint == f"ws://{b.listen}/pushpull"
    assert a.app_socket != b.app_socket
    assert b.partners[0].limits.retry_max == 10.0 and b.partners[0].limits.window == 500


def test_readme_configuration_passes_check_config(folder: Path) -> None:
    """The README's first configuration, its digest placeholder filled in."""
    text = doc_blocks(README, "toml")[0].replace('"…"', f'"{"0" * 64}"')
    (folder / "a.toml").write_text(text)
    assert cli(["check-config", "-c", str(folder / "a.toml")]) == 0


def test_python_example_validates(folder: Path) -> None:
    """configuration.md "Building a configuration in code" runs as written: validate()
    passes, and the partner given no limits inherits the node's."""
    [block] = doc_blocks(CONFIGURATION, "python")
    namespace: dict[str, Any] = {}
    exec(compile(block, str(CONFIGURATION), "exec"), namespace)
    config: PeerConfig = namespace["config"]
    assert config.partners[0].limits.window == 200
    assert config.signing_keys_path == folder / "a.jwks.json"


def test_check_config_console_example(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The problems configuration.md shows for broken.toml are the lines printed, exit 2."""
    console = doc_blocks(CONFIGURATION, "console")[0]
    shown = console.split("$ setpeer check-config -c broken.toml")[1].splitlines()[1:]
    text = _hash_placeholders(config_files()["a.toml"])
    text = text.replace(
        "allow_insecure_loopback = true",
        "allow_insecure_loopback = true\n\n[peer.limits]\nwindow = 0",
        1,
    )
    text = text.replace("initiate = true", 'initiate = true\nsend_via = "carrier-pigeon"')
    text = text.replace('bearer = "env:A_TO_B_TOKEN"', 'bearer = "an-inline-token"')
    (folder / "broken.toml").write_text(text)
    assert cli(["check-config", "-c", str(folder / "broken.toml")]) == 2
    assert capsys.readouterr().err.splitlines() == shown


def _table(text: str, heading: str) -> list[list[str]]:
    """The rows (cells) of the first Markdown table after ``heading``."""
    after = text.split(heading, 1)[1]
    rows = []
    for line in after.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # header and rule left out


def test_limit_defaults_are_the_code_defaults() -> None:
    """Every key of configuration.md's [peer.limits] table, with the code's default."""
    rows = _table(CONFIGURATION.read_text(), "### `[peer.limits]`")
    documented = {row[0].strip("`"): row[1].split()[0].strip("`") for row in rows}
    defaults = {f.name: f.default for f in dataclasses.fields(Limits)}
    assert set(documented) == set(defaults)
    for key, value in documented.items():
        assert float(value) == defaults[key], key


def test_partner_and_peer_defaults_are_the_code_defaults() -> None:
    """The literal defaults of the [peer] and [[partners]] tables are the code's."""
    text = CONFIGURATION.read_text()
    for heading, cls in (("## `[peer]`", PeerConfig), ("## `[[partners]]`", Partner)):
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        for row in _table(text, heading):
            key, default = row[0].strip("`"), row[1]
            literal = re.fullmatch(r"`(\".*\"|[\d.]+|true|false)`", default)
            if literal is None:
                continue  # "required", "none", prose, `Peer.url`
            assert tomllib.loads(f"v = {literal[1]}")["v"] == defaults[key], key


def _keys(table: dict[str, Any]) -> Iterator[str]:
    for key, value in table.items():
        yield key
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                yield from _keys(item)


def test_every_toml_key_in_the_docs_is_documented() -> None:
    """A key in any TOML block of the README, configuration, security or operations
    docs is a key of configuration.md (a row or a table heading)."""
    text = CONFIGURATION.read_text()
    documented = set(re.findall(r"^\| `(\w+)` \|", text, re.MULTILINE))
    # Keys of nested tables (`oauth`, `client_cert`) are named in their row's text.
    documented |= {
        k for row in re.findall(r"^\|.*", text, re.MULTILINE) for k in re.findall(r"`(\w+)`", row)
    }
    documented |= {part for h in re.findall(r"`\[+([\w.]+)\]+`", text) for part in h.split(".")}
    for doc in TOML_DOCS:
        for block in doc_blocks(doc, "toml"):
            unknown = set(_keys(tomllib.loads(block))) - documented
            assert not unknown, f"{doc.name}: {unknown} in\n{block}"


# -- exit codes ---------------------------------------------------------------------

# The codes the commands use today. The table in the docs (README or operations.md,
# a table whose first column is headed "exit") is what the test follows once it is
# there; until then, these.
TODAY = {0: "ok", 1: "runtime failure", 2: "usage or config problem", 3: "jti already stored"}


def documented_exit_codes() -> set[int]:
    for doc in (README, ROOT / "docs" / "operations.md"):
        for match in re.finditer(
            r"^\| *exit[^|\n]*\|.*\n\|[-| :]+\|\n((?:\|.*\n)+)",
            doc.read_text(),
            re.MULTILINE | re.IGNORECASE,
        ):
            return {int(re.search(r"\d+", row.split("|")[1])[0]) for row in match[1].splitlines()}
    return set(TODAY)


def test_exit_codes_are_the_documented_ones(folder: Path) -> None:
    """Each documented exit code is what a real `setpeer` process returns for it."""
    for name, text in config_files().items():
        (folder / name).write_text(_hash_placeholders(text))
    (folder / "broken.toml").write_text("[peer]\nissuer = 1\n")
    event = ("--event", "https://schemas.openid.net/secevent/caep/event-type/session-revoked")
    send = ("send", "-c", "a.toml", "--to", "b", *event)
    scenarios: dict[int, list[tuple[str, ...]]] = {
        0: [("check-config", "-c", "a.toml"), (*send, "--jti", "evt-42")],
        1: [  # a SET over max_set_bytes (nothing stored); no store to read
            (*send, "--payload", '{"reason_admin": {"en": "%s"}}' % ("x" * 70_000)),
            ("failures", "-c", "b.toml"),
        ],
        2: [("check-config", "-c", "broken.toml"), ("send", "-c", "a.toml"), ("nonsense",)],
        3: [(*send, "--jti", "evt-42")],
    }
    assert documented_exit_codes() == set(scenarios)
    for code, commands in scenarios.items():
        for command in commands:
            result = subprocess.run(
                [sys.executable, "-m", "peer", *command],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=seconds(30),
            )
            assert result.returncode == code, (command, result.stderr)
            assert "Traceback" not in result.stderr, command
