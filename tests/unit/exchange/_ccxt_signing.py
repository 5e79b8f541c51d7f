"""Every ccxt exchange signs a private request offline, and what it signed is found.

For one exchange class: an instance with fake but distinctive credentials (the secret as
base64, hex or a PEM key, whichever its ``sign()`` accepts), a frozen clock, and a few
of its private endpoints from the implicit API (``ImplicitAPI`` entries). ``sign()``
runs twice, with two different secrets (or private keys): the tokens that differ are
the signature. No request is sent. An exchange whose ``sign()`` needs a session token
(``signIn()`` first) or puts no credential in the request (the action is signed by the
calling method) yields no request.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import ccxt
from ccxt.base.exchange import Exchange
from ccxt.base.types import Entry

# Distinctive, easy to grep for, none a prefix of another.
API_KEY: Final = "APIKEYq7Xv3Lm9Pw2Rt8Zs"
PASSWORD: Final = "PASSWDk4Hj6Ty1Ue5Rq"
UID: Final = "UIDn3Bv8Cx2Za7Qm"
TOKEN: Final = "TOKENw5Ed9Rf2Tg6Yh"
ACCOUNT_ID: Final = "ACCTf8Gh2Jk5Lz9Xc"
LOGIN: Final = "LOGINr6Tb3Nm8Vq1Ws"
# Exchanges that check the key's shape before signing.
KEY_SHAPES: Final = {"gemini": "account-" + "APIKEYq7Xv3Lm9Pw2Rt8Zs"}
PRIVATE_KEY_A: Final = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
PRIVATE_KEY_B: Final = "0x" + "8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f"
WALLET: Final = "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23"

# Values of ordinary fields sent with every request: none may be redacted.
ORDINARY: Final = {
    "symbol": "BTCUSDT", "side": "BUY", "price": "45123.5", "quantity": "0.00123",
    "orderId": "987654321012", "clientOrderId": "myClientOrd42",
}


def _pem_ec(seed: int) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.derive_private_key(seed, ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def _pem_ed25519(seed: int) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@lru_cache(maxsize=1)
def _secrets() -> list[tuple[str, str, str]]:
    """(format, secret A, secret B): tried in turn until sign() accepts one. A format
    ending in ``-pk`` is the private key's (with the base64 secret)."""
    return [
        ("base64", base64.b64encode(b"SECRETa-" * 8).decode(),
         base64.b64encode(b"SECRETb-" * 8).decode()),
        ("hex", "5ec12e7a" * 8, "5ec12e7b" * 8),
        ("hex-pk", PRIVATE_KEY_A, PRIVATE_KEY_B),
        ("short", "SECRETa" + "x" * 25, "SECRETb" + "x" * 25),  # lbank: HMAC up to 32
        ("pem-ec", _pem_ec(0x5EC12E7A), _pem_ec(0x5EC12E7B)),
        ("pem-ed25519", _pem_ed25519(0x5A), _pem_ed25519(0x5B)),
        ("raw-ed25519", base64.b64encode(bytes([0x5A]) * 32).decode(),
         base64.b64encode(bytes([0x5B]) * 32).decode()),
        ("base58-ed25519", "ed25519:" + Exchange.binary_to_base58(bytes([0x5A]) * 32),
         "ed25519:" + Exchange.binary_to_base58(bytes([0x5B]) * 32)),
        ("pem-ed25519-pk", _pem_ed25519(0x5A), _pem_ed25519(0x5B)),
        ("pem-ec-pk", _pem_ec(0x5EC12E7A), _pem_ec(0x5EC12E7B)),
    ]


_FROZEN_MS: Final = 1_700_000_000_123


def _freeze(exchange: Any) -> None:
    exchange.milliseconds = lambda: _FROZEN_MS
    exchange.seconds = lambda: _FROZEN_MS // 1000
    exchange.microseconds = lambda: _FROZEN_MS * 1000
    exchange.nonce = lambda: _FROZEN_MS
    for name in ("uuid", "uuid16", "uuid22", "uuidv1"):
        if hasattr(exchange, name):
            setattr(exchange, name, lambda *a, **k: "0f0e0d0c-0b0a-4908-8706-050403020100")


def credentials(exchange_id: str, secret: str, private_key: str = PRIVATE_KEY_A
                ) -> dict[str, str]:
    return {"apiKey": KEY_SHAPES.get(exchange_id, API_KEY), "secret": secret,
            "password": PASSWORD, "uid": UID, "token": TOKEN, "privateKey": private_key,
            "walletAddress": WALLET, "accountId": ACCOUNT_ID, "login": LOGIN}


def make(exchange_id: str, secret: str, private_key: str = PRIVATE_KEY_A,
         module: Any = ccxt, **config: Any) -> Any:
    exchange = getattr(module, exchange_id)({
        **credentials(exchange_id, secret, private_key), "enableRateLimit": False, **config})
    _freeze(exchange)
    return exchange


def private_entries(cls: type) -> list[Entry[Any]]:
    """The implicit-API endpoints of ``cls`` that are not public, GET and POST mixed."""
    seen: dict[tuple[str, str, str], Entry[Any]] = {}
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            if isinstance(value, Entry):
                api = value.api if isinstance(value.api, list) else [value.api]
                if any("public" in str(a).lower() for a in api):
                    continue
                seen[(str(api), value.method, value.path)] = value
    entries = list(seen.values())
    private = [e for e in entries if any("private" in str(a).lower() for a in
                                         (e.api if isinstance(e.api, list) else [e.api]))]
    return private + [e for e in entries if e not in private]


def _params(path: str, method: str) -> dict[str, Any]:
    """Every path placeholder filled, and the ordinary order fields."""
    params: dict[str, Any] = {name: "pathv4lue" for name in re.findall(r"\{(\w+)\}", path)}
    params.update(ORDINARY)
    return params


@dataclass
class Signed:
    """One signed request (secret A), and what in it is secret."""

    exchange: str
    secret_format: str
    entry: str
    method: str
    url: str
    headers: dict[str, str]
    body: str
    secrets: dict[str, str]
    """Name -> value that must not be exported: the credentials, and every token
    (8+ characters) present with secret A and absent with secret B (the signature)."""


_TOKEN: Final = re.compile(r"[A-Za-z0-9+/_\-.~]+={0,2}")
# Credentials every exported text must lose. uid, walletAddress, accountId and login
# are identifiers, not secrets: ccxt's instrumentation registers the first two anyway.
_SECRET_FIELDS: Final = ("apiKey", "secret", "password", "token", "privateKey")


def _tokens(*texts: str) -> set[str]:
    return {t for text in texts for t in _TOKEN.findall(text) if len(t) >= 8}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _sign(exchange: Any, entry: Entry[Any]) -> tuple[str, str, dict[str, str], str]:
    request = exchange.sign(entry.path, entry.api, entry.method,
                            _params(entry.path, entry.method))
    headers = {str(k): _text(v) for k, v in (request.get("headers") or {}).items()}
    return (str(request.get("url") or ""), str(request.get("method") or entry.method),
            headers, _text(request.get("body")))


def _pair(exchange_id: str, fmt: str, a: str, b: str) -> tuple[Any, Any, dict[str, str]]:
    if fmt.endswith("-pk"):
        secret = _secrets()[0][1]
        made = make(exchange_id, secret, private_key=a), make(exchange_id, secret, private_key=b)
        creds = credentials(exchange_id, secret, a)
    else:
        made = make(exchange_id, a), make(exchange_id, b)
        creds = credentials(exchange_id, a)
    secrets = {k: creds[k] for k in _SECRET_FIELDS}
    if secrets["privateKey"].startswith("0x"):
        secrets["privateKey (hex)"] = secrets["privateKey"][2:]
    return made[0], made[1], secrets


def sign_private(exchange_id: str, max_entries: int = 3, max_tries: int = 40
                 ) -> tuple[list[Signed], str | None]:
    """Up to ``max_entries`` signed private requests (those that carry a credential or
    depend on the secret), or ([], why) when none could be signed offline."""
    entries = private_entries(getattr(ccxt, exchange_id))
    if not entries:
        return [], "no private endpoints"
    errors: list[str] = []
    for fmt, secret_a, secret_b in _secrets():
        try:
            ex_a, ex_b, secrets = _pair(exchange_id, fmt, secret_a, secret_b)
        except Exception as exc:  # an exchange rejecting the key format at construction
            errors.append(f"{fmt}: {type(exc).__name__}: {exc}"[:160])
            continue
        found: list[Signed] = []
        methods = {e.method for e in entries[:max_tries]}
        pending = list(entries[:max_tries])
        # one of each method first, then the rest
        firsts = [next(e for e in pending if e.method == m) for m in sorted(methods)]
        for entry in firsts + [e for e in pending if e not in firsts]:
            if len(found) >= max_entries:
                break
            try:
                url, method, headers, body = _sign(ex_a, entry)
                url_b, _, headers_b, body_b = _sign(ex_b, entry)
            except Exception as exc:
                errors.append(f"{fmt}: {type(exc).__name__}: {exc}"[:160])
                continue
            raw = " ".join((url, *headers.values(), body))
            differing = _tokens(url, *headers.values(), body) - _tokens(
                url_b, *headers_b.values(), body_b)
            if not differing and not any(v in raw for v in secrets.values()):
                continue  # not authenticated offline (a session token, a signed action)
            values = dict(secrets)
            values.update((f"signed#{i}", t) for i, t in enumerate(sorted(differing)))
            found.append(Signed(exchange_id, fmt, f"{entry.api} {entry.method} {entry.path}",
                                method, url, headers, body, values))
        if found:
            return found, None
    return [], (errors[-1] if errors else "sign() carries no credential offline")


def all_signed(ids: list[str] | None = None) -> Iterator[tuple[str, list[Signed], str | None]]:
    for exchange_id in ids or ccxt.exchanges:
        yield (exchange_id, *sign_private(exchange_id))


def leaks(exported: str, values: dict[str, str], prefix: int = 8) -> list[str]:
    """The names of the values (or their first ``prefix`` characters, PEM bodies by a
    line of theirs) found in ``exported``."""
    found = []
    for name, value in values.items():
        if name.startswith("signed#") and _looks_public(value):
            continue
        needles = [value]
        if value.startswith("-----BEGIN"):
            needles = [line for line in value.splitlines()[1:-1] if len(line) >= prefix]
        else:
            # the first characters of the value proper ("ed25519:<base58>": after the tag)
            core = value.rpartition(":")[2] if ":" in value[:prefix] else value
            if len(core) >= prefix:
                needles.append(core[:prefix])
        if any(n in exported for n in needles):
            found.append(name)
    return found


def _looks_public(token: str) -> bool:
    """A wallet address derived from the private key changes with it, but is public."""
    return bool(re.fullmatch(r"0x[0-9a-fA-F]{40}", token))


def header_attributes(headers: dict[str, str]) -> dict[str, Any]:
    """Headers as the contrib instrumentations capture them (``OTEL_INSTRUMENTATION_
    HTTP_CAPTURE_HEADERS_CLIENT_REQUEST``): ``http.request.header.<name>`` tuples."""
    return {f"http.request.header.{k.lower().replace('-', '_')}": (v,)
            for k, v in headers.items()}


