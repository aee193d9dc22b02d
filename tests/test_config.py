"""Configuration: every rule of peer.config, from TOML files and from code (docs/configuration.md).

Configs are written to ``tmp_path`` from a Python dict (``toml()``), mutated one key at a
time for the table-driven cases; hostile files are written as raw text.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from peer.config import (
    AppConfig,
    ClientCert,
    InboundAuth,
    Limits,
    OAuthClient,
    OutboundAuth,
    Partner,
    PeerConfig,
    TLSConfig,
    check_secrets,
    is_loopback,
    load_config,
    resolve_secret,
)
from peer.config.limits import limit_problems
from peer.errors import ConfigError, UnknownPartner
from peer.link import LEASE_TTL
from peer.protocol.limits import FrameLimits
from peer.tokens.keys import generate_private_jwks, public_jwks

SECRET = "s3cr3t-Value-never-echoed"
DIGEST = hashlib.sha256(b"token-b-presents").hexdigest()
DELETE = object()


def toml_value(value: Any) -> str:
    """A TOML literal; dicts become inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else {math.inf: "inf", -math.inf: "-inf"}.get(value, repr(value))
        )
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict), value
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml(document: dict[str, Any]) -> str:
    """``document`` as TOML: ``[peer]``, then one ``[[partners]]`` per entry."""
    lines = []
    for key, value in document.items():
        if key not in ("peer", "partners"):
            lines.append(f"{json.dumps(key)} = {toml_value(value)}")
    if isinstance(document.get("peer"), dict):
        lines.append("[peer]")
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in document["peer"].items()]
    elif "peer" in document:
        lines.insert(0, f"peer = {toml_value(document['peer'])}")
    partners = document.get("partners", [])
    if isinstance(partners, list) and all(isinstance(p, dict) for p in partners):
        for partner in partners:
            lines.append("[[partners]]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in partner.items()]
    else:
        lines.insert(0, f"partners = {toml_value(partners)}")
    return "\n".join(lines) + "\n"


def base() -> dict[str, Any]:
    """A valid config: we dial ``b`` over plain WebSocket on loopback."""
    return {
        "peer": {
            "issuer": "https://a.example",
            "listen": "127.0.0.1:0",
            "store": "sqlite:///a.db",
            "signing_keys": "a.jwks.json",
            "allow_insecure_loopback": True,
        },
        "partners": [
            {
                "name": "b",
                "issuer": "https://b.example",
                "audience": "https://b.example",
                "jwks": "b.public.json",
                "endpoint": "ws://127.0.0.1:9443/pushpull",
                "initiate": True,
                "auth": {"bearer": "env:SETPEER_TEST_CONFIG_TOKEN"},
                "inbound": {"bearer_sha256": DIGEST},
            }
        ],
    }


def mutate(document: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Set (or with DELETE remove) ``key``, a dotted path such as ``partners[0].auth.bearer``."""
    document = copy.deepcopy(document)
    parts = key.replace("[0]", ".0").split(".")
    node: Any = document
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    if value is DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return document


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    private = generate_private_jwks("ES256")
    (tmp_path / "a.jwks.json").write_text(json.dumps(private))
    (tmp_path / "b.public.json").write_text(json.dumps(public_jwks(generate_private_jwks())))
    (tmp_path / "garbage.json").write_text("{not json")
    (tmp_path / "empty-keys.json").write_text('{"keys": []}')
    for name in ("a.crt", "a.key", "ca.pem", "client.crt", "client.key"):
        (tmp_path / name).write_text("-----BEGIN PLACEHOLDER-----\n")
    return tmp_path


def load(folder: Path, document: dict[str, Any] | str) -> PeerConfig:
    path = folder / "peer.toml"
    path.write_text(document if isinstance(document, str) else toml(document))
    return load_config(path)


def problems(folder: Path, document: dict[str, Any] | str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load(folder, document)
    assert info.value.problems, "a ConfigError always lists its problems"
    return info.value.problems


def keys(found: list[tuple[str, str]]) -> list[str]:
    return [key for key, _ in found]


class TestValid:
    """Valid configs load, with defaults and resolved paths."""

    def test_base_config_loads_with_documented_defaults(self, folder: Path) -> None:
        config = load(folder, base())
        partner = config.partner("b")
        assert config.issuer == "https://a.example"
        assert (config.listen_host, config.listen_port) == ("127.0.0.1", 0)
        assert config.signing_keys == folder / "a.jwks.json"
        assert config.store_path == folder / "a.db"
        assert config.tls is None and config.config_dir == folder
        assert (partner.transport, partner.send_via, partner.receive_via) == (
            "websocket",
            "pushpull",
            "pushpull",
        )
        assert partner.ssf is False and partner.jwks == folder / "b.public.json"
        assert partner.limits == config.limits == Limits()
        assert partner.http_endpoint == "http://127.0.0.1:9443/pushpull"

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("peer.store", "memory://"),
            ("peer.store", "postgresql://setpeer@db.internal:5432/setpeer"),
            ("peer.listen", "[::1]:8443"),
            ("peer.tls", {"certfile": "a.crt", "keyfile": "a.key", "client_ca": "ca.pem"}),
            ("partners[0].endpoint", "wss://b.example/pushpull"),
            ("partners[0].endpoint", "ws://127.8.9.10:1/pushpull"),
            ("partners[0].endpoint", "http://[::1]:9/pushpull"),
            ("partners[0].transport", "http"),
            ("partners[0].ssf", True),
            ("partners[0].ssf", "receiver"),
            ("partners[0].ssf", "transmitter"),
            ("partners[0].strict_subjects", True),
            ("partners[0].ca", "ca.pem"),
            ("partners[0].auth", {"oauth": {"client_id": "a", "private_key_jwt": "a.jwks.json"}}),
            (
                "partners[0].auth",
                {"oauth": {"client_id": "a", "client_secret": "file:s", "scope": "ssf"}},
            ),
            ("partners[0].auth.client_cert", {"certfile": "client.crt", "keyfile": "client.key"}),
            ("partners[0].inbound", {"oauth": {"issuer": "https://as.b.example", "subject": "b"}}),
            ("partners[0].limits", {"window": 5, "retry_max": 2}),
        ],
    )
    def test_accepted(self, folder: Path, key: str, value: Any) -> None:
        """Each documented form of a key loads."""
        config = load(folder, mutate(base(), key, value))
        assert len(config.partners) == 1

    def test_legacy_modes_with_their_endpoints(self, folder: Path) -> None:
        """send_via push/multipush and receive_via poll each with its endpoint (PUSH-1)."""
        document = base()
        for mode, key in (("push", "push_endpoint"), ("multipush", "multipush_endpoint")):
            document = mutate(document, "partners[0].send_via", mode)
            document = mutate(document, f"partners[0].{key}", f"https://b.example/{mode}")
            assert load(folder, document).partners[0].send_via == mode
        document = mutate(document, "partners[0].receive_via", "poll")
        document = mutate(document, "partners[0].poll_endpoint", "https://b.example/poll")
        assert load(folder, document).partners[0].poll_endpoint == "https://b.example/poll"

    def test_partner_that_dials_us_needs_no_outbound_auth(self, folder: Path) -> None:
        document = mutate(base(), "partners[0].initiate", False)
        document = mutate(document, "partners[0].auth", DELETE)
        document = mutate(document, "partners[0].endpoint", DELETE)
        assert load(folder, document).partners[0].auth == OutboundAuth()


class TestInvalid:
    """Each rule names the key it breaks; the partner-facing ones cite PP-1/PP-18/PP-20."""

    CASES = [
        ("peer.issuer", DELETE, "peer.issuer", "is required"),
        ("peer.issuer", 5, "peer.issuer", "must be a string"),
        ("peer.issuer", "  ", "peer.issuer", "must not be empty"),
        ("peer.listen", "127.0.0.1", "peer.listen", "HOST:PORT"),
        ("peer.listen", "127.0.0.1:70000", "peer.listen", "between 0 and 65535"),
        ("peer.listen", "::1:8443", "peer.listen", "brackets"),
        ("peer.listen", "0.0.0.0:8443", "peer.tls", "non-loopback"),
        ("peer.listen", "localhost:8443", "peer.tls", "non-loopback"),
        ("peer.allow_insecure_loopback", False, "peer.tls", "allow_insecure_loopback"),
        ("peer.allow_insecure_loopback", "yes", "peer.allow_insecure_loopback", "true or false"),
        ("peer.store", "sqlite://a.db", "peer.store", "three slashes"),
        ("peer.store", "sqlite:///", "peer.store", "file path"),
        ("peer.store", "mysql://db/a", "peer.store", "memory://, sqlite:///PATH or postgresql"),
        ("peer.store", "sqlite:///no/such/dir/a.db", "peer.store", "folder not found"),
        ("peer.store", f"postgresql://u:{SECRET}@db/a", "peer.store", "PGPASSWORD"),
        ("peer.store", f"postgresql://db/a?password={SECRET}", "peer.store", "PGPASSWORD"),
        ("peer.signing_keys", DELETE, "peer.signing_keys", "is required"),
        ("peer.signing_keys", "nope.json", "peer.signing_keys", "file not found"),
        ("peer.signing_keys", ".", "peer.signing_keys", "not a regular file"),
        ("peer.signing_keys", "b.public.json", "peer.signing_keys", "private key"),
        ("peer.signing_keys", "garbage.json", "peer.signing_keys", "not a valid JSON"),
        ("peer.signing_keys", "empty-keys.json", "peer.signing_keys", '"keys"'),
        (
            "peer.tls",
            {"certfile": "nope.crt", "keyfile": "a.key"},
            "peer.tls.certfile",
            "not found",
        ),
        ("peer.tls", {"certfile": "a.crt"}, "peer.tls.keyfile", "is required"),
        ("peer.tls", "on", "peer.tls", "must be a table"),
        ("peer.tls.cipher", "x", "peer.tls.cipher", "unknown key"),
        ("peer.log_level", "debug", "peer.log_level", "unknown key"),
        ("peer.limits.window", 0, "peer.limits.window", "between 1 and"),
        ("peer.limits.window", 1.5, "peer.limits.window", "integer"),
        ("peer.limits.window", True, "peer.limits.window", "integer"),
        ("peer.limits.retry_initial", -1, "peer.limits.retry_initial", "more than 0"),
        ("peer.limits.retry_max", math.inf, "peer.limits.retry_max", "finite"),
        ("peer.limits.retry_max", math.nan, "peer.limits.retry_max", "finite"),
        ("peer.limits.retry_max", "5s", "peer.limits.retry_max", "number of seconds"),
        ("peer.limits.idle_timeout", 10**30, "peer.limits.idle_timeout", "a week"),
        ("peer.limits.max_frame_bytes", 2**63 - 1, "peer.limits.max_frame_bytes", "between"),
        ("peer.limits.max_set_bytes", 2 * 2**20, "peer.limits.max_set_bytes", "max_frame_bytes"),
        ("peer.limits.reconnect_initial", 60, "peer.limits.reconnect_initial", "reconnect_max"),
        ("peer.limits.retry_initial", 301, "peer.limits.retry_initial", "retry_max"),
        ("peer.limits.windw", 5, "peer.limits.windw", "unknown key"),
        ("peer.limits.failures_kept", 0, "peer.limits.failures_kept", "between 1 and 1000000"),
        ("peer.limits.failures_kept", 10**6 + 1, "peer.limits.failures_kept", "between 1 and"),
        ("peer.limits.failures_kept", 2.5, "peer.limits.failures_kept", "integer"),
        ("partners[0].name", DELETE, "partners[0].name", "is required"),
        ("partners[0].name", "b c", "partners[0].name", "letters, digits"),
        ("partners[0].name", "x" * 65, "partners[0].name", "1-64"),
        ("partners[0].issuer", "https://a.example", "partners[0].issuer", "our own issuer"),
        ("partners[0].audience", "", "partners[0].audience", "must not be empty"),
        ("partners[0].audience", "a\nb", "partners[0].audience", "control characters"),
        ("partners[0].jwks", DELETE, "partners[0].jwks", "exactly one"),
        ("partners[0].jwks_uri", "https://b.example/jwks", "partners[0].jwks", "exactly one"),
        ("partners[0].jwks", "a.jwks.json", "partners[0].jwks", "private or symmetric"),
        ("partners[0].jwks", "missing.json", "partners[0].jwks", "file not found"),
        ("partners[0].endpoint", "ftp://b.example/", "partners[0].endpoint", "wss:// or https://"),
        ("partners[0].endpoint", "wss:///pushpull", "partners[0].endpoint", "must name a host"),
        ("partners[0].endpoint", "wss://b.example:99999/", "partners[0].endpoint", "not a valid"),
        ("partners[0].endpoint", "wss://b.example/#x", "partners[0].endpoint", "fragment"),
        ("partners[0].endpoint", "wss://b.example/ x", "partners[0].endpoint", "spaces"),
        ("partners[0].endpoint", "ws://10.0.0.1/pushpull", "partners[0].endpoint", "loopback"),
        ("partners[0].endpoint", "ws://localhost:9/pushpull", "partners[0].endpoint", "loopback"),
        ("partners[0].endpoint", DELETE, "partners[0].endpoint", "initiate = true"),
        ("partners[0].initiate", "yes", "partners[0].initiate", "true or false"),
        ("partners[0].transport", "pigeon", "partners[0].transport", "websocket, http"),
        ("partners[0].send_via", "smoke", "partners[0].send_via", "pushpull, push, multipush"),
        ("partners[0].receive_via", "fax", "partners[0].receive_via", "one of"),
        ("partners[0].send_via", "push", "partners[0].push_endpoint", 'send_via = "push"'),
        ("partners[0].send_via", "multipush", "partners[0].multipush_endpoint", "multipush"),
        ("partners[0].receive_via", "poll", "partners[0].poll_endpoint", 'receive_via = "poll"'),
        ("partners[0].poll_endpoint", "wss://b.example/", "partners[0].poll_endpoint", "https"),
        ("partners[0].push_endpoint", "http://b.example/", "partners[0].push_endpoint", "loopback"),
        ("partners[0].jwks_uri", "http://b.example/j", "partners[0].jwks_uri", "loopback"),
        ("partners[0].ssf", 1, "partners[0].ssf", "true, false"),
        ("partners[0].ssf", "sender", "partners[0].ssf", '"receiver" or "transmitter"'),
        ("partners[0].ca", "nope.pem", "partners[0].ca", "file not found"),
        ("partners[0].colour", "red", "partners[0].colour", "unknown key"),
        ("partners[0].auth.bearer", SECRET, "partners[0].auth.bearer", "never given inline"),
        ("partners[0].auth.bearer", "env:1BAD", "partners[0].auth.bearer", "environment variable"),
        ("partners[0].auth.bearer", "file:", "partners[0].auth.bearer", "must name a file"),
        ("partners[0].auth.bearer", DELETE, "partners[0].auth", "we connect to this partner"),
        (
            "partners[0].auth.oauth",
            {"client_id": "a", "client_secret": "env:X"},
            "partners[0].auth.oauth",
            "not both",
        ),
        (
            "partners[0].auth.oauth",
            {"client_secret": "env:X"},
            "partners[0].auth.oauth.client_id",
            "is required",
        ),
        ("partners[0].auth.oauth", {"client_id": "a"}, "partners[0].auth.oauth", "exactly one"),
        (
            "partners[0].auth.oauth",
            {"client_id": "a", "client_secret": SECRET},
            "partners[0].auth.oauth.client_secret",
            "inline",
        ),
        (
            "partners[0].auth.oauth",
            {"client_id": "a", "private_key_jwt": "b.public.json"},
            "partners[0].auth.oauth.private_key_jwt",
            "private key",
        ),
        (
            "partners[0].auth.oauth",
            {"client_id": "a", "client_secret": "env:X", "token_endpoint": "http://as/t"},
            "partners[0].auth.oauth.token_endpoint",
            "loopback",
        ),
        ("partners[0].auth.oauth", "yes", "partners[0].auth.oauth", "must be a table"),
        (
            "partners[0].auth.client_cert",
            {"certfile": "nope.crt"},
            "partners[0].auth.client_cert.keyfile",
            "is required",
        ),
        ("partners[0].auth.colour", "red", "partners[0].auth.colour", "unknown key"),
        (
            "partners[0].inbound.bearer_sha256",
            DIGEST.upper(),
            "partners[0].inbound.bearer_sha256",
            "lowercase hex",
        ),
        (
            "partners[0].inbound.bearer_sha256",
            DIGEST[:-1],
            "partners[0].inbound.bearer_sha256",
            "64",
        ),
        (
            "partners[0].inbound.client_cert_sha256",
            DIGEST,
            "partners[0].inbound.client_cert_sha256",
            "client_ca",
        ),
        (
            "partners[0].inbound.oauth",
            {"issuer": "https://as.example"},
            "partners[0].inbound.oauth.subject",
            "is required",
        ),
        (
            "partners[0].inbound.oauth",
            {"issuer": "as", "subject": "b"},
            "partners[0].inbound.oauth.issuer",
            "https://",
        ),
        ("partners[0].limits.window", -3, "partners[0].limits.window", "between 1 and"),
        ("partners[0].limits.retry_initial", 400, "partners[0].limits.retry_initial", "retry_max"),
        ("partners[0].limits.nope", 1, "partners[0].limits.nope", "unknown key"),
        ("partners[0].limits.failures_kept", -1, "partners[0].limits.failures_kept", "between"),
        ("partners[0].limits", 5, "partners[0].limits", "must be a table"),
        ("peer", "x", "peer", "must be a table"),
        ("extra", 1, "extra", "unknown key"),
    ]

    @pytest.mark.parametrize(("key", "value", "where", "fragment"), CASES)
    def test_problem_names_its_key(
        self, folder: Path, key: str, value: Any, where: str, fragment: str
    ) -> None:
        found = problems(folder, mutate(base(), key, value))
        assert any(k == where and fragment in m for k, m in found), found
        assert all(SECRET not in f"{k}: {m}" for k, m in found), "a secret was echoed"

    def test_partner_that_dials_us_needs_inbound_credentials(self, folder: Path) -> None:
        """PP-20: every inbound session is authenticated and maps to exactly one partner."""
        document = mutate(base(), "partners[0].initiate", False)
        document = mutate(document, "partners[0].inbound", DELETE)
        found = problems(folder, document)
        assert keys(found) == ["partners[0].inbound"]

    def test_client_cert_mapping_needs_client_ca(self, folder: Path) -> None:
        document = mutate(base(), "partners[0].inbound.client_cert_sha256", DIGEST)
        tls = {"certfile": "a.crt", "keyfile": "a.key", "client_ca": "ca.pem"}
        assert load(folder, mutate(document, "peer.tls", tls)).tls is not None


class TestAcrossPartners:
    """A SET's iss, and each inbound credential, maps to exactly one partner."""

    def two(self) -> dict[str, Any]:
        document = base()
        second = copy.deepcopy(document["partners"][0])
        second.update(name="c", issuer="https://c.example", audience="https://c.example")
        second["inbound"] = {"bearer_sha256": hashlib.sha256(b"c").hexdigest()}
        document["partners"].append(second)
        return document

    def test_two_distinct_partners_load(self, folder: Path) -> None:
        assert [p.name for p in load(folder, self.two()).partners] == ["b", "c"]

    @pytest.mark.parametrize(
        ("key", "value", "message"),
        [
            ("name", "b", "same name as partners[0]"),
            ("issuer", "https://b.example", "same issuer as partners[0]"),
            ("inbound", {"bearer_sha256": DIGEST}, "same credential as partners[0]"),
        ],
    )
    def test_duplicates(self, folder: Path, key: str, value: Any, message: str) -> None:
        document = self.two()
        document["partners"][1][key] = value
        found = problems(folder, document)
        wanted = "partners[1].inbound.bearer_sha256" if key == "inbound" else f"partners[1].{key}"
        assert (wanted, message) in found

    def test_oauth_subject_duplicates(self, folder: Path) -> None:
        document = self.two()
        for partner in document["partners"]:
            partner["inbound"] = {"oauth": {"issuer": "https://as.example", "subject": "same"}}
        found = problems(folder, document)
        assert found == [
            ("partners[1].inbound.oauth", "same OAuth issuer and subject as partners[0]")
        ]


class TestManyProblems:
    """Every problem is reported at once, not just the first."""

    def test_all_reported(self, folder: Path) -> None:
        document = base()
        for key, value in [
            ("peer.listen", "nowhere"),
            ("peer.limits.window", "many"),
            ("partners[0].send_via", "smoke"),
            ("partners[0].auth.bearer", SECRET),
            ("partners[0].limits.windw", 1),
            ("partners[0].inbound.bearer_sha256", "zz"),
        ]:
            document = mutate(document, key, value)
        found = problems(folder, document)
        assert sorted(keys(found)) == sorted(
            [
                "partners[0].limits.windw",
                "peer.listen",
                "peer.limits.window",
                "partners[0].send_via",
                "partners[0].auth.bearer",
                "partners[0].inbound.bearer_sha256",
            ]
        )
        assert SECRET not in str(ConfigError(found))

    def test_inherited_bad_limit_reported_once(self, folder: Path) -> None:
        """A bad peer limit is reported at peer.limits, not again for each partner."""
        document = mutate(base(), "peer.limits.window", 0)
        document = mutate(document, "partners[0].limits.retry_max", 5)
        assert keys(problems(folder, document)) == ["peer.limits.window"]


class TestLimits:
    """Per-partner overrides, float durations, and the parse limits (MP-22, POLL-15)."""

    def test_partner_overrides_inherit_the_rest(self, folder: Path) -> None:
        document = mutate(base(), "peer.limits", {"window": 50, "retry_max": 9})
        document = mutate(document, "partners[0].limits", {"window": 7, "idle_timeout": 3})
        config = load(folder, document)
        limits = config.partners[0].limits
        assert (limits.window, limits.retry_max, limits.idle_timeout) == (7, 9.0, 3.0)
        assert config.limits.window == 50 and config.limits.idle_timeout == 60.0
        assert type(limits.idle_timeout) is float and type(limits.retry_max) is float

    def test_frame_limits(self) -> None:
        frame = Limits(
            max_frame_bytes=4096, max_set_bytes=1024, max_sets_per_frame=7
        ).frame_limits()
        assert isinstance(frame, FrameLimits)
        assert (frame.max_frame_bytes, frame.max_set_bytes, frame.max_sets_per_frame) == (
            4096,
            1024,
            7,
        )
        assert Limits().frame_limits().max_acks_per_frame == FrameLimits().max_acks_per_frame
        # The partner may acknowledge our whole window in one object.
        assert Limits(window=50_000).frame_limits().max_acks_per_frame == 50_000

    def test_lease_ttl_defaults_to_ten_seconds_and_is_at_least_three(self) -> None:
        assert Limits().lease_ttl == LEASE_TTL == 10.0
        assert limit_problems(Limits(lease_ttl=3), "peer.limits") == []
        for short in (2.9, 0.5):
            assert limit_problems(Limits(lease_ttl=short), "peer.limits") == [
                (
                    "peer.limits.lease_ttl",
                    "must be at least 3 seconds (leases are renewed each second)",
                )
            ]

    def test_frame_limits_of_invalid_limits_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError) as info:
            Limits(max_sets_per_frame=0).frame_limits()
        assert info.value.problems[0][0] == "limits.max_sets_per_frame"


class TestPaths:
    """Relative paths start at the config file's folder."""

    def test_relative_and_absolute(self, folder: Path) -> None:
        sub = folder / "etc"
        sub.mkdir()
        (sub / "keys").mkdir()
        (sub / "data").mkdir()
        (folder / "a.jwks.json").rename(sub / "keys" / "a.jwks.json")
        document = mutate(base(), "peer.signing_keys", "keys/a.jwks.json")
        document = mutate(document, "peer.store", "sqlite:///data/a.db")
        document = mutate(document, "partners[0].jwks", str(folder / "b.public.json"))
        document = mutate(
            document,
            "partners[0].auth.client_cert",
            {"certfile": "../client.crt", "keyfile": str(folder / "client.key")},
        )
        config = load(sub, document)
        assert config.config_dir == sub
        assert config.signing_keys == sub / "keys" / "a.jwks.json"
        assert config.store == "sqlite:///data/a.db"  # kept as written; store_path resolves
        assert config.store_path == sub / "data" / "a.db"
        partner = config.partners[0]
        assert partner.jwks == folder / "b.public.json"
        assert partner.auth.client_cert == ClientCert(
            certfile=sub / "../client.crt", keyfile=folder / "client.key"
        )

    def test_absolute_sqlite_path(self, folder: Path) -> None:
        config = load(folder, mutate(base(), "peer.store", f"sqlite:///{folder}/x.db"))
        assert str(folder).startswith("/") and config.store_path == folder / "x.db"
        assert config.store == f"sqlite:////{str(folder)[1:]}/x.db"

    def test_tls_files_resolved(self, folder: Path) -> None:
        tls = {"certfile": "a.crt", "keyfile": "a.key", "client_ca": "ca.pem"}
        config = load(folder, mutate(base(), "peer.tls", tls))
        assert config.tls == TLSConfig(
            certfile=folder / "a.crt", keyfile=folder / "a.key", client_ca=folder / "ca.pem"
        )


class TestLoopback:
    """PP-1, PUSH-23: TLS only; plain ws/http only to literal loopback, only with the flag."""

    @pytest.mark.parametrize(
        ("host", "loopback"),
        [
            ("127.0.0.1", True),
            ("127.255.0.9", True),
            ("::1", True),
            ("[::1]", True),
            ("localhost", False),  # resolved at connect time: not checkable here
            ("128.0.0.1", False),
            ("0.0.0.0", False),
            ("::", False),
            ("::ffff:127.0.0.1", False),
            ("10.0.0.1", False),
            ("b.example", False),
            ("", False),
            (None, False),
        ],
    )
    def test_is_loopback(self, host: str | None, loopback: bool) -> None:
        assert is_loopback(host) is loopback

    @pytest.mark.parametrize(
        "key", ["endpoint", "push_endpoint", "multipush_endpoint", "poll_endpoint", "jwks_uri"]
    )
    def test_plain_url_needs_the_flag(self, folder: Path, key: str) -> None:
        scheme = "ws" if key == "endpoint" else "http"
        document = mutate(base(), f"partners[0].{key}", f"{scheme}://127.0.0.1:9/x")
        if key == "jwks_uri":
            document = mutate(document, "partners[0].jwks", DELETE)
        assert load(folder, document).partners[0] is not None
        document = mutate(document, "peer.allow_insecure_loopback", False)
        document = mutate(document, "peer.tls", {"certfile": "a.crt", "keyfile": "a.key"})
        found = problems(folder, document)
        wanted = f"{scheme}:// needs peer.allow_insecure_loopback = true"
        assert (f"partners[0].{key}", wanted) in found
        if key != "endpoint":  # the base endpoint is plain ws:// too
            assert len(found) == 2


class TestSecrets:
    """Secrets are env:NAME or file:PATH; no message ever holds one (Security stance)."""

    def test_env(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("SETPEER_TEST_SECRET", SECRET)
        assert resolve_secret("env:SETPEER_TEST_SECRET", tmp_path) == SECRET
        monkeypatch.setenv("SETPEER_TEST_SECRET", "")
        with pytest.raises(ConfigError, match="is empty"):
            resolve_secret("env:SETPEER_TEST_SECRET", tmp_path)
        monkeypatch.delenv("SETPEER_TEST_SECRET")
        with pytest.raises(ConfigError) as info:
            resolve_secret("env:SETPEER_TEST_SECRET", tmp_path, key="partners[0].auth.bearer")
        assert info.value.problems == [
            ("partners[0].auth.bearer", "environment variable SETPEER_TEST_SECRET is not set")
        ]

    def test_file(self, tmp_path: Path) -> None:
        (tmp_path / "token").write_text(SECRET + "\r\n")
        assert resolve_secret("file:token", tmp_path) == SECRET
        assert resolve_secret(f"file:{tmp_path / 'token'}", Path("/nonexistent")) == SECRET
        for name, data, message in [
            ("empty", b"\n", "is empty"),
            ("binary", b"\xff\xfe" + SECRET.encode(), "not UTF-8"),
            ("big", b"x" * (64 * 1024 + 1), "larger than"),
        ]:
            (tmp_path / name).write_bytes(data)
            with pytest.raises(ConfigError, match=message) as info:
                resolve_secret(f"file:{name}", tmp_path)
            assert SECRET not in str(info.value)
        with pytest.raises(ConfigError, match="cannot read"):
            resolve_secret("file:missing", tmp_path)

    @pytest.mark.parametrize(
        "ref", [SECRET, "env:", "env:A-B", "file:", "file:a\x00b", "ENV:X", ""]
    )
    def test_not_a_reference(self, tmp_path: Path, ref: str) -> None:
        with pytest.raises(ConfigError) as info:
            resolve_secret(ref, tmp_path)
        assert SECRET not in str(info.value)

    def test_check_secrets_resolves_every_reference(
        self, folder: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("SETPEER_TEST_CONFIG_TOKEN", raising=False)
        config = load(folder, base())  # the form is enough to load
        assert check_secrets(config) == [
            ("partners[0].auth.bearer", "environment variable SETPEER_TEST_CONFIG_TOKEN is not set")
        ]
        monkeypatch.setenv("SETPEER_TEST_CONFIG_TOKEN", SECRET)
        assert check_secrets(config) == []
        assert config.partners[0].outbound_bearer() == SECRET
        oauth = {"oauth": {"client_id": "a", "client_secret": "file:oauth-secret"}}
        config = load(folder, mutate(base(), "partners[0].auth", oauth))
        assert keys(check_secrets(config)) == ["partners[0].auth.oauth.client_secret"]
        (folder / "oauth-secret").write_text(SECRET)
        assert check_secrets(config) == [] and config.partners[0].outbound_bearer() is None


class TestHostileFiles:
    """Broken or hostile files end in ConfigError, never another exception."""

    @pytest.mark.parametrize(
        ("text", "where", "fragment"),
        [
            ("[peer\nissuer = 1", "(file)", "not valid TOML"),
            ("a = 1\na = 2", "(file)", "not valid TOML"),
            ("a = " + "[" * 5000 + "]" * 5000, "(file)", "nested too deeply"),
            ("a = " + "{b = " * 3000 + "1" + "}" * 3000, "(file)", "nested too deeply"),
            ("a = " + "9" * 5000, "(file)", "number too long"),
            ("[" + ".".join(["peer"] + ["x"] * 3000) + "]", "peer.x", "unknown key"),
            ("partners = 5", "partners", "array of tables"),
            ("[partners]\nname = 'b'", "partners", "array of tables"),
            ("peer = [1, 2]", "peer", "must be a table"),
            ("[peer]\nissuer = 1979-05-27T07:32:00Z", "peer.issuer", "must be a string"),
            ('"\\u0000weird key" = 1', '"\\u0000weird key"', "unknown key"),
            ("k" * 100 + " = 1", json.dumps("k" * 64)[:-1] + '..."', "unknown key"),
        ],
    )
    def test_hostile_text(self, folder: Path, text: str, where: str, fragment: str) -> None:
        found = problems(folder, text)
        assert any(k == where and fragment in m for k, m in found), found

    def test_partner_entries_that_are_not_tables_keep_indices(self, folder: Path) -> None:
        partner = base()["partners"][0] | {"send_via": "smoke"}
        text = f"partners = [1, {toml_value(partner)}]\n" + toml({"peer": base()["peer"]})
        found = problems(folder, text)
        assert keys(found) == ["partners[0]", "partners[1].send_via"]

    def test_unreadable(self, tmp_path: Path) -> None:
        for path, fragment in [
            (tmp_path / "missing.toml", "cannot read"),
            (tmp_path, "cannot read"),
        ]:
            with pytest.raises(ConfigError) as info:
                load_config(path)
            assert info.value.problems[0][0] == "(file)" and fragment in info.value.problems[0][1]

    def test_too_large_or_not_utf8(self, tmp_path: Path) -> None:
        (tmp_path / "big.toml").write_bytes(b"#" * (1024 * 1024 + 1))
        (tmp_path / "latin1.toml").write_bytes(b'[peer]\nissuer = "\xe9"\n')
        for name, fragment in [("big.toml", "larger than"), ("latin1.toml", "not UTF-8")]:
            with pytest.raises(ConfigError) as info:
                load_config(tmp_path / name)
            assert info.value.problems == [("(file)", info.value.problems[0][1])]
            assert fragment in info.value.problems[0][1]

    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.text(alphabet=string.printable + "[]{}=.\"'é\x00", max_size=300))
    def test_random_text(self, folder: Path, text: str) -> None:
        (folder / "fuzz.toml").write_text(text, encoding="utf-8")
        try:
            load_config(folder / "fuzz.toml")
        except ConfigError as exc:
            assert exc.problems


class TestBuiltInCode:
    """A PeerConfig / Partner built in code: validate() reports the same problems."""

    def partner(self, **changes: Any) -> Partner:
        fields: dict[str, Any] = {
            "name": "b",
            "issuer": "https://b.example",
            "audience": "https://b.example",
            "jwks": "b.public.json",
            "endpoint": "ws://127.0.0.1:9443/pushpull",
            "initiate": True,
            "auth": OutboundAuth(bearer="env:SETPEER_TEST_CONFIG_TOKEN"),
            "inbound": InboundAuth(bearer_sha256=DIGEST),
        }
        return Partner(**(fields | changes))

    def config(self, folder: Path, **changes: Any) -> PeerConfig:
        fields: dict[str, Any] = {
            "issuer": "https://a.example",
            "listen": "127.0.0.1:0",
            "store": "sqlite:///a.db",
            "signing_keys": "a.jwks.json",
            "allow_insecure_loopback": True,
            "partners": [self.partner()],
            "config_dir": folder,
        }
        return PeerConfig(**(fields | changes))

    def test_equivalent_to_the_file(self, folder: Path) -> None:
        # The one default that differs: a file config serves the local interface on
        # app.sock beside it, a config built in code serves none unless asked.
        built = self.config(folder, app=AppConfig(listen="unix:app.sock"))
        built.validate()
        assert built == load(folder, base())

    def test_same_problems_as_the_file(self, folder: Path) -> None:
        document = mutate(base(), "peer.limits.window", 0)
        document = mutate(document, "partners[0].send_via", "smoke")
        document = mutate(document, "partners[0].auth.bearer", SECRET)
        document = mutate(document, "partners[0].limits.retry_max", math.inf)
        built = self.config(
            folder,
            limits=Limits(window=0),
            partners=(
                self.partner(
                    send_via="smoke",
                    auth=OutboundAuth(bearer=SECRET),
                    limits=Limits(window=0, retry_max=math.inf),
                ),
            ),
        )
        with pytest.raises(ConfigError) as info:
            built.validate()
        assert info.value.problems == problems(folder, document)

    def test_partner_inherits_folder_and_limits(self, folder: Path) -> None:
        config = self.config(folder, limits=Limits(window=3))
        partner = config.partners[0]
        assert partner.limits.window == 3 and partner.jwks == folder / "b.public.json"
        assert config.signing_keys == folder / "a.jwks.json"
        own = self.config(folder, partners=[self.partner(limits=Limits(window=9))])
        assert own.partners[0].limits.window == 9

    def test_oauth_and_cert_paths_resolved(self, folder: Path) -> None:
        auth = OutboundAuth(
            oauth=OAuthClient(client_id="a", private_key_jwt=Path("a.jwks.json")),
            client_cert=ClientCert(certfile=Path("client.crt"), keyfile=Path("client.key")),
        )
        config = self.config(folder, partners=[self.partner(auth=auth)])
        config.validate()
        resolved = config.partners[0].auth
        assert (
            resolved.oauth is not None and resolved.oauth.private_key_jwt == folder / "a.jwks.json"
        )
        assert resolved.client_cert == ClientCert(
            certfile=folder / "client.crt", keyfile=folder / "client.key"
        )

    def test_partner_lookup(self, folder: Path) -> None:
        config = self.config(folder)
        assert config.partner("b") is config.partners[0]
        with pytest.raises(UnknownPartner):
            config.partner("nobody")

    @pytest.mark.parametrize(
        ("endpoint", "http"),
        [
            ("wss://b.example/pp", "https://b.example/pp"),
            ("WS://127.0.0.1:1/pp", "http://127.0.0.1:1/pp"),
            ("https://b.example/pp", "https://b.example/pp"),
            (None, ""),
        ],
    )
    def test_http_endpoint(self, endpoint: str | None, http: str) -> None:
        assert self.partner(endpoint=endpoint).http_endpoint == http

    JUNK = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),
        st.text(max_size=20),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        st.just(Path("/nonexistent")),
        st.just(OutboundAuth()),
    )

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        st.sampled_from([f.name for f in dataclasses.fields(Partner) if f.name != "config_dir"]),
        st.sampled_from([f.name for f in dataclasses.fields(PeerConfig)]),
        st.sampled_from([f.name for f in dataclasses.fields(Limits)]),
        JUNK,
        JUNK,
        JUNK,
    )
    def test_junk_values_only_ever_give_config_errors(
        self,
        folder: Path,
        partner_field: str,
        peer_field: str,
        limit_field: str,
        a: Any,
        b: Any,
        c: Any,
    ) -> None:
        """Whatever a caller puts in any field, validate() answers with problems, not a crash."""
        partner = self.partner(**{partner_field: a})
        limits = Limits(**{limit_field: c})
        changes = {"partners": [partner], "limits": limits} | {peer_field: b}
        config = self.config(folder, **changes)
        try:
            config.validate()
        except ConfigError as exc:
            assert exc.problems and all(isinstance(k, str) for k, _ in exc.problems)


class TestDocumentedExample:
    """docs/configuration.md's two loopback peers load as written."""

    def test_both_files_load(self, tmp_path: Path) -> None:
        doc = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
        blocks = doc.split("```toml\n")[1:]
        configs = {}
        for block in blocks:
            text = block.split("```", 1)[0]
            if 'issuer = "https://a.example"\nlisten = "127.0.0.1:9441"' in text:
                configs["a"] = text
            elif 'issuer = "https://b.example"\nlisten = "127.0.0.1:9442"' in text:
                configs["b"] = text
        assert set(configs) == {"a", "b"}
        for name in "ab":
            private = generate_private_jwks("ES256")
            (tmp_path / f"{name}.jwks.json").write_text(json.dumps(private))
            (tmp_path / f"{name}.public.json").write_text(json.dumps(public_jwks(private)))
        loaded = {}
        for name, text in configs.items():
            text = text.replace("<sha256 of B_TO_A_TOKEN>", DIGEST)
            text = text.replace("<sha256 of A_TO_B_TOKEN>", DIGEST)
            loaded[name] = load_config_text(tmp_path, f"{name}.toml", text)
        assert loaded["a"].partner("b").initiate is True
        b = loaded["b"]
        assert (b.limits.window, b.partner("a").limits.window) == (500, 500)
        assert b.partner("a").limits.retry_max == 10.0


def load_config_text(folder: Path, name: str, text: str) -> PeerConfig:
    (folder / name).write_text(text)
    return load_config(folder / name)
