"""The IETF ``RateLimit`` and ``RateLimit-Policy`` fields (draft-ietf-httpapi-ratelimit-
headers-08 and later), read into (window, quota, remaining) per policy.

``RateLimit-Policy: "default";q=100;w=60, "daily";q=1000;w=86400`` names each quota
policy: ``q`` requests (quota units) per ``w`` seconds. ``RateLimit: "default";r=40;t=12``
says ``r`` of the policy's quota remain, ``t`` seconds before it resets. Both are
Structured Field lists (RFC 9651); this reader takes the subset the draft uses (an item
is a string or token naming the policy, then ``;key=integer`` parameters) and skips
anything else. It never raises: a field it cannot read gives nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["Policy", "parse_policies"]

# An item: "name" or name, then ;key=value parameters (value an integer, a string, a
# byte sequence such as the partition key pk=:base64:, or a token; only integers are
# used).
_ITEM: Final = re.compile(
    r'\s*(?:"(?P<qname>[^"\\]{0,64})"|(?P<tname>[A-Za-z*][A-Za-z0-9_\-.:%*/]{0,63}))'
    r'(?P<params>(?:\s*;\s*[a-z*][a-z0-9_\-.*]{0,15}(?:=(?:-?[0-9]{1,15}|"[^"\\]{0,64}"'
    r'|:[A-Za-z0-9+/=]{0,128}:|[A-Za-z*][A-Za-z0-9_\-.:%*/]{0,63}))?)*)\s*$')
_PARAM: Final = re.compile(r';\s*([a-z*][a-z0-9_\-.*]{0,15})(?:=(-?[0-9]{1,15}))?')
# A response with more policies than this is not one a bot reads item by item.
_MAX_ITEMS: Final = 16
_MAX_FIELD_CHARS: Final = 4096


@dataclass(frozen=True)
class Policy:
    """One quota policy as the two fields describe it (None: not sent)."""

    name: str
    quota: int | None
    window_s: int | None
    remaining: int | None


def _items(value: str) -> dict[str, dict[str, int]]:
    """The list's items by policy name, with their integer parameters."""
    found: dict[str, dict[str, int]] = {}
    if len(value) > _MAX_FIELD_CHARS:
        return found
    for part in value.split(",")[:_MAX_ITEMS]:
        match = _ITEM.match(part)
        if match is None:
            continue
        name = match.group("qname") if match.group("qname") is not None \
            else match.group("tname")
        plain = re.sub(r'"[^"]*"', '""', match.group("params"))  # no ;q=5 inside a string
        params = {key: int(number) for key, number in _PARAM.findall(plain) if number}
        found.setdefault(name, params)
    return found


def parse_policies(policy_field: str | None, ratelimit_field: str | None) -> list[Policy]:
    """The policies the two fields (comma-joined if repeated) describe; a policy is
    listed when either field names it. Negative numbers are dropped as unsent."""
    policies = _items(policy_field or "")
    current = _items(ratelimit_field or "")
    out: list[Policy] = []
    for name in dict.fromkeys([*policies, *current]):
        declared, now = policies.get(name, {}), current.get(name, {})

        def positive(params: dict[str, int], key: str) -> int | None:
            value = params.get(key)
            return value if value is not None and value >= 0 else None

        out.append(Policy(name, positive(declared, "q"), positive(declared, "w"),
                          positive(now, "r")))
    return out
