"""Exchange conventions as data: rate-limit headers, request budgets and secret names.

One :class:`Exchange` row per exchange, in :data:`EXCHANGES`. The rate-limit readers
(:mod:`otel_botmon.instrument.ratelimit`) and the secret scrubber
(:mod:`otel_botmon.redaction`) read this table; neither has an exchange's name in code.
Adding an exchange is one row here plus its case in the parametrized table test.

A row says:

* ``name``: the exchange's ccxt id (``exchange.name`` on the metrics); ``aliases`` are
  other ids that mean the same venue (ccxt's ``binanceusdm``, the old ``huobi``).
* ``hosts``: API host names (a request to ``fapi.binance.com`` is Binance's even when
  the bot did not name its exchange).
* ``budgets``: separate request budgets. A :class:`Budget` applies to the paths that
  start with one of its ``paths`` (the first match wins; ``()`` matches every path) and
  lists the :class:`RateLimitHeader` rows the exchange sends for it. A path that starts
  with an HTTP method and a space (``"POST /api/v4/spot/orders"``) matches only requests
  with that method: Gate.io's ``GET /spot/orders`` (200 per 10 s) and ``POST
  /spot/orders`` (10 per second) share a path, not a budget. A request whose method is
  not known matches only the plain paths. Binance spot, SAPI
  and USD-M futures each count weight separately, so they are three budgets: a SAPI
  reading of 40 never hides a spot reading of 5900. A budget ``per_endpoint`` (Bybit's
  per-endpoint limits) is counted apart for each URL path. A budget with ``hosts`` or
  ``venues`` covers only requests to those hosts (KuCoin's futures host) or, to a host
  that is not the exchange's, by those ccxt ids (``kucoinfutures``).
* ``secret_names``: the header, query and body names that carry a key, a signature or
  a passphrase (matched the way :func:`otel_botmon.redaction.is_sensitive_key` matches:
  case and ``-``/``_``/``.`` ignored, a name ending in one is sensitive too);
  ``exact_secret_names`` only as the whole name (Gate.io's ``KEY``/``SIGN`` header would
  otherwise make ``monkey`` and ``design`` secret).

A :class:`RateLimitHeader` ``pattern`` is a header name, case-insensitive, in which
``{interval}`` stands for a number and a unit (``1m``, ``10s``, ``1d``) read from the
name. Its ``kind`` says what the value is: ``used`` (weight or requests spent in the
interval), ``orders`` (orders placed in the interval), ``remaining`` (what is left;
with the ``limit`` header of the same budget it gives used = limit - remaining) or
``limit`` (the budget's size, sent by the exchange) or ``window`` (the interval, in
milliseconds, sent by the exchange: HTX futures). ``limits`` gives the documented
size by interval when the exchange does not send it, so utilization (0..1) is known.
``Retry-After`` on a 418/429/503, and the IETF ``RateLimit``/``RateLimit-Policy``
fields, are read for every exchange and need no row.

This module is data only: it imports nothing from otel_botmon.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

__all__ = [
    "EXCHANGES",
    "Budget",
    "Exchange",
    "RateLimitHeader",
    "all_exact_secret_names",
    "all_secret_names",
    "find_exchange",
]

HeaderKind = Literal["used", "orders", "remaining", "limit", "window"]


@dataclass(frozen=True)
class RateLimitHeader:
    """One response header that reports a rate-limit reading."""

    pattern: str
    """Header name, case-insensitive; ``{interval}`` stands for e.g. ``1m``."""
    kind: HeaderKind
    interval: str | None = None
    """The interval when the name does not carry it (``10s``, ``1m``)."""
    limits: tuple[tuple[str, float], ...] = ()
    """Documented budget size per interval, e.g. ``(("1m", 6000),)``."""
    identifies: bool = True
    """Whether the header names this exchange: a generic name (``X-RateLimit-Limit``,
    ``ratelimit-limit``) is read only for an exchange named or found by its host, never
    taken as the sign that a response is this exchange's."""


@dataclass(frozen=True)
class Budget:
    """One separately counted request budget of an exchange."""

    name: str
    """``ratelimit.budget`` on the metrics (``spot``, ``sapi``, ``usdm`` ...)."""
    paths: tuple[str, ...] = ()
    """URL path prefixes this budget covers, each optionally after an HTTP method and a
    space (``"DELETE /api/v4/spot/orders"``: that method only); ``()`` = any path."""
    headers: tuple[RateLimitHeader, ...] = ()
    per_endpoint: bool = False
    """Each endpoint (URL path) has a limit of its own and the headers report that one
    (Bybit): ``ratelimit.budget`` is then ``"{name} {path}"``, so one endpoint's reading
    never hides another's."""
    hosts: tuple[str, ...] = ()
    """API hosts this budget covers (KuCoin's futures host); ``()`` = any host. With
    ``venues`` too, a request to one of the hosts or by one of the venues matches."""
    venues: tuple[str, ...] = ()
    """ccxt ids (``kucoinfutures``) whose requests count against this budget wherever
    they go (a client pointed at a test server's host)."""


@dataclass(frozen=True)
class Exchange:
    """The conventions of one exchange."""

    name: str
    hosts: tuple[str, ...]
    budgets: tuple[Budget, ...]
    secret_names: tuple[str, ...]
    exact_secret_names: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


_BINANCE_SECRETS: Final = ("X-MBX-APIKEY", "signature", "apiKey", "secret")

_ALPACA_HEADERS: Final = (
    RateLimitHeader("x-ratelimit-limit", "limit", interval="1m", identifies=False),
    RateLimitHeader("x-ratelimit-remaining", "remaining", interval="1m", identifies=False),
)
_KUCOIN_HEADERS: Final = (
    RateLimitHeader("gw-ratelimit-limit", "limit", interval="30s"),
    RateLimitHeader("gw-ratelimit-remaining", "remaining", interval="30s"),
)
# Market data on the spot host (api.kucoin.com) and the futures host.
_KUCOIN_PUBLIC: Final = (
    "/api/v1/currencies", "/api/v3/currencies", "/api/v1/symbols", "/api/v2/symbols",
    "/api/v1/market/", "/api/v1/markets", "/api/v1/prices", "/api/v1/timestamp",
    "/api/v1/status", "/api/v1/mark-price/", "/api/v3/announcements",
    "/api/v1/bullet-public", "/api/v1/contracts/", "/api/v1/ticker", "/api/v1/allTickers",
    "/api/v1/level2/", "/api/v1/level3/", "/api/v2/level3/", "/api/v1/trade/history",
    "/api/v1/kline/", "/api/v1/interest/", "/api/v1/index/", "/api/v1/premium/",
    "/api/v1/trade-statistics", "/api/v1/funding-rate/", "/api/v1/contract/funding-rates",
)
_KUCOIN_MANAGEMENT: Final = (
    "/api/v1/user-info", "/api/v1/user/api-key", "/api/v1/accounts", "/api/v2/accounts/",
    "/api/v3/accounts/", "/api/v1/sub/", "/api/v2/sub/", "/api/v1/sub-accounts",
    "/api/v2/sub-accounts", "/api/v1/deposit-addresses", "/api/v2/deposit-addresses",
    "/api/v3/deposit-address", "/api/v1/deposits", "/api/v1/hist-deposits",
    "/api/v1/withdrawals", "/api/v3/withdrawals", "/api/v1/hist-withdrawals",
    "/api/v1/transfer-list", "/api/v1/transaction-history", "/api/v3/transfer-out",
    "/api/v1/transfer-out", "/api/v1/transfer-in",
)

def _gate_headers(interval: str) -> tuple[RateLimitHeader, ...]:
    return (RateLimitHeader("x-gate-ratelimit-limit", "limit", interval=interval),
            RateLimitHeader("x-gate-ratelimit-requests-remain", "remaining", interval=interval))


# Gate.io's perpetual futures settle in USDT or BTC: /api/v4/futures/{settle}/...
_GATE_FUTURES: Final = ("/api/v4/futures/usdt", "/api/v4/futures/btc")
_GATE_PLACE: Final = (
    "POST /api/v4/spot/orders", "POST /api/v4/spot/batch_orders",
    "PATCH /api/v4/spot/orders/", "POST /api/v4/spot/amend_batch_orders",
    *(f"{method} {settle}{path}" for settle in _GATE_FUTURES for method, path in (
        ("POST", "/orders"), ("POST", "/batch_orders"), ("POST", "/bbo_orders"),
        ("PUT", "/orders/"), ("POST", "/batch_amend_orders"))),
)
_GATE_CANCEL: Final = (
    "DELETE /api/v4/spot/orders", "POST /api/v4/spot/cancel_batch_orders",
    *(f"{method} {settle}{path}" for settle in _GATE_FUTURES for method, path in (
        ("DELETE", "/orders"), ("POST", "/batch_cancel_orders"))),
)

EXCHANGES: Final[tuple[Exchange, ...]] = (
    Exchange(
        name="binance",
        aliases=("binanceus", "binanceusdm", "binancecoinm"),
        hosts=("api.binance.com", "api1.binance.com", "api2.binance.com", "api3.binance.com",
               "api4.binance.com", "api-gcp.binance.com", "testnet.binance.vision",
               "fapi.binance.com", "dapi.binance.com", "testnet.binancefuture.com",
               "api.binance.us"),
        budgets=(
            Budget("sapi", paths=("/sapi/",), headers=(
                RateLimitHeader("x-sapi-used-ip-weight-{interval}", "used",
                                limits=(("1m", 12000.0),)),
                RateLimitHeader("x-sapi-used-uid-weight-{interval}", "used",
                                limits=(("1m", 180000.0),)),
            )),
            Budget("usdm", paths=("/fapi/",), headers=(
                RateLimitHeader("x-mbx-used-weight-{interval}", "used",
                                limits=(("1m", 2400.0),)),
                RateLimitHeader("x-mbx-order-count-{interval}", "orders",
                                limits=(("10s", 300.0), ("1m", 1200.0))),
            )),
            Budget("coinm", paths=("/dapi/",), headers=(
                RateLimitHeader("x-mbx-used-weight-{interval}", "used",
                                limits=(("1m", 2400.0),)),
                RateLimitHeader("x-mbx-order-count-{interval}", "orders",
                                limits=(("1m", 1200.0),)),
            )),
            Budget("spot", headers=(
                RateLimitHeader("x-mbx-used-weight-{interval}", "used",
                                limits=(("1m", 6000.0),)),
                RateLimitHeader("x-mbx-order-count-{interval}", "orders",
                                limits=(("10s", 100.0), ("1d", 200000.0))),
            )),
        ),
        secret_names=_BINANCE_SECRETS,
    ),
    Exchange(
        name="bybit",
        hosts=("api.bybit.com", "api.bytick.com", "api-testnet.bybit.com"),
        budgets=(Budget("v5", per_endpoint=True, headers=(
            RateLimitHeader("x-bapi-limit", "limit", interval="1s"),
            RateLimitHeader("x-bapi-limit-status", "remaining", interval="1s"),
        )),),
        secret_names=("X-BAPI-API-KEY", "X-BAPI-SIGN", "api_key", "sign"),
    ),
    Exchange(
        # OKX sends no rate-limit headers; 429 (code 50011) is read from the status.
        name="okx",
        hosts=("www.okx.com", "aws.okx.com", "my.okx.com"),
        budgets=(),
        secret_names=("OK-ACCESS-KEY", "OK-ACCESS-SIGN", "OK-ACCESS-PASSPHRASE"),
    ),
    Exchange(
        # KuCoin's resource pools (rate limit 2.0) are counted apart: the public pool per
        # IP, spot (with margin), futures and management per account, each with its own
        # quota per 30 s, and every response reports the pool of its endpoint. Market
        # data is public on either host; accounts, deposits, withdrawals, transfers and
        # sub-accounts are management; the futures host (or a kucoinfutures client) is
        # futures; the rest is spot.
        name="kucoin",
        aliases=("kucoinfutures",),
        hosts=("api.kucoin.com", "api-futures.kucoin.com", "openapi-sandbox.kucoin.com"),
        budgets=(
            Budget("public", paths=_KUCOIN_PUBLIC, headers=_KUCOIN_HEADERS),
            Budget("management", paths=_KUCOIN_MANAGEMENT, headers=_KUCOIN_HEADERS),
            Budget("futures", hosts=("api-futures.kucoin.com",), venues=("kucoinfutures",),
                   headers=_KUCOIN_HEADERS),
            Budget("spot", headers=_KUCOIN_HEADERS),
        ),
        secret_names=("KC-API-KEY", "KC-API-SIGN", "KC-API-PASSPHRASE"),
    ),
    Exchange(
        name="gate",
        aliases=("gateio",),
        hosts=("api.gateio.ws", "fx-api.gateio.ws", "api.gate.io"),
        # Since January 2024 every endpoint has a limit of its own and the headers report
        # that one: 200 per 10 s for most; placing or amending orders 10 per second (per
        # market) on spot and 100 per second on perpetual futures; cancelling 200 per
        # second. The method tells them apart: GET /spot/orders lists, POST places.
        budgets=(
            Budget("orders", per_endpoint=True, paths=_GATE_PLACE, headers=_gate_headers("1s")),
            Budget("cancel", per_endpoint=True, paths=_GATE_CANCEL,
                   headers=_gate_headers("1s")),
            Budget("api", per_endpoint=True, headers=_gate_headers("10s")),
        ),
        secret_names=(),
        exact_secret_names=("KEY", "SIGN"),
    ),
    Exchange(
        # Kraken counts calls against a decaying counter and sends no headers; a
        # throttled call answers "EAPI:Rate limit exceeded".
        name="kraken",
        aliases=("krakenfutures",),
        hosts=("api.kraken.com", "futures.kraken.com"),
        budgets=(),
        # Kraken Futures signs with an "Authent" header next to its "APIKey".
        secret_names=("API-Key", "API-Sign", "otp", "APIKey", "Authent"),
    ),
    Exchange(
        # Coinbase documents per-second limits (30/s private, 10/s public) but sends no
        # rate-limit headers; Advanced Trade authenticates with a JWT bearer token.
        name="coinbase",
        aliases=("coinbaseexchange", "coinbaseadvanced"),
        hosts=("api.coinbase.com", "api.exchange.coinbase.com"),
        budgets=(),
        secret_names=("CB-ACCESS-KEY", "CB-ACCESS-SIGN", "CB-ACCESS-PASSPHRASE"),
    ),
    Exchange(
        # Bitget documents per-endpoint limits per second and sends no headers for them.
        name="bitget",
        hosts=("api.bitget.com",),
        budgets=(),
        secret_names=("ACCESS-KEY", "ACCESS-SIGN", "ACCESS-PASSPHRASE"),
    ),
    Exchange(
        # HTX spot limits each endpoint on its own (per UID) and reports only what is
        # left of it (X-HB-RateLimit-Requests-Remain; -Expire is when the window ends):
        # no size, no window. The futures host (api.hbdm.com) sends the limit, what is
        # left and the window in milliseconds, for all private endpoints together.
        name="htx",
        aliases=("huobi",),
        hosts=("api.huobi.pro", "api.hbdm.com", "api-aws.huobi.pro", "api.htx.com",
               "api-aws.hbdm.com"),
        budgets=(
            Budget("futures", hosts=("api.hbdm.com", "api-aws.hbdm.com"), headers=(
                RateLimitHeader("ratelimit-limit", "limit", identifies=False),
                RateLimitHeader("ratelimit-remaining", "remaining", identifies=False),
                RateLimitHeader("ratelimit-interval", "window", identifies=False),
            )),
            Budget("api", per_endpoint=True, headers=(
                RateLimitHeader("x-hb-ratelimit-requests-remain", "remaining"),
            )),
        ),
        secret_names=("AccessKeyId", "Signature"),
    ),
    Exchange(
        # BingX limits each endpoint per UID and reports what is left of it
        # (X-RateLimit-Requests-Remain; -Expire is when the window ends).
        name="bingx",
        hosts=("open-api.bingx.com", "open-api-vst.bingx.com"),
        budgets=(Budget("api", per_endpoint=True, headers=(
            RateLimitHeader("x-ratelimit-requests-remain", "remaining"),
        )),),
        secret_names=("X-BX-APIKEY", "signature"),
    ),
    Exchange(
        # Hyperliquid: 1200 weight per minute per IP, no headers; actions are signed
        # with the wallet's private key ({"signature": {"r", "s", "v"}} in the body).
        name="hyperliquid",
        hosts=("api.hyperliquid.xyz", "api.hyperliquid-testnet.xyz"),
        budgets=(),
        secret_names=("signature", "privateKey", "walletPrivateKey"),
    ),
    # Exchanges below (Alpaca aside) send no rate-limit headers otel_botmon reads; their
    # rows name the headers and fields that carry a key or a signature (found by signing a
    # private request of every ccxt exchange offline: tests/unit/exchange/test_ccxt_signing.py).
    Exchange(
        # Alpaca sends X-RateLimit-Limit/-Remaining (-Reset: when the window ends, epoch
        # seconds); the trading API allows 200 per minute, market data by plan.
        name="alpaca",
        hosts=("api.alpaca.markets", "paper-api.alpaca.markets", "broker-api.alpaca.markets",
               "data.alpaca.markets"),
        budgets=(
            Budget("data", hosts=("data.alpaca.markets",), headers=_ALPACA_HEADERS),
            Budget("trading", headers=_ALPACA_HEADERS),
        ),
        secret_names=("APCA-API-KEY-ID", "APCA-API-SECRET-KEY"),
    ),
    Exchange(
        # Phemex counts per group (contract trading, spot orders, the rest), each with its
        # own capacity per minute, and every response reports the group of its endpoint
        # in x-ratelimit-{remaining,capacity}-<GROUP>.
        name="phemex",
        hosts=("api.phemex.com", "vapi.phemex.com", "testnet-api.phemex.com"),
        budgets=tuple(
            Budget(group.lower(), headers=(
                RateLimitHeader(f"x-ratelimit-remaining-{group}", "remaining",
                                interval="1m"),
                RateLimitHeader(f"x-ratelimit-capacity-{group}", "limit", interval="1m"),
            ))
            for group in ("OTHERS", "CONTRACT", "SPOTORDER")
        ),
        secret_names=("x-phemex-access-token", "x-phemex-request-signature"),
    ),
    Exchange(
        # X-Auth is "BITSTAMP <api key>".
        name="bitstamp",
        hosts=("www.bitstamp.net",),
        budgets=(),
        secret_names=("X-Auth", "X-Auth-Signature"),
    ),
    Exchange(
        name="btcturk",
        hosts=("api.btcturk.com", "graph-api.btcturk.com"),
        budgets=(),
        secret_names=("X-PCK", "X-Signature"),
    ),
    Exchange(
        name="btse",
        hosts=("api.btse.com",),
        budgets=(),
        secret_names=("request-api", "request-sign"),
    ),
    Exchange(
        name="cex",
        hosts=("trade.cex.io",),
        budgets=(),
        secret_names=("X-AGGR-KEY", "X-AGGR-SIGNATURE"),
    ),
    Exchange(
        # The API key travels as "publicKey" in the form body.
        name="coinmate",
        hosts=("coinmate.io",),
        budgets=(),
        secret_names=("publicKey", "signature"),
    ),
    Exchange(
        # JSON-RPC body: {"api_key": ..., "sig": ...}.
        name="cryptocom",
        hosts=("api.crypto.com", "deriv-api.crypto.com"),
        budgets=(),
        secret_names=("api_key",),
        exact_secret_names=("sig",),
    ),
    Exchange(
        # broker_sign repeats the request's signature.
        name="hashkey",
        hosts=("api-glb.hashkey.com",),
        budgets=(),
        secret_names=("X-HK-APIKEY", "broker_sign", "signature"),
    ),
    Exchange(
        name="mercado",
        hosts=("api.mercadobitcoin.net", "www.mercadobitcoin.net"),
        budgets=(),
        secret_names=("TAPI-ID", "TAPI-MAC"),
    ),
    Exchange(
        # X-Authentication carries the API secret itself.
        name="mudrex",
        hosts=("trade.mudrex.com",),
        budgets=(),
        secret_names=("X-Authentication",),
    ),
    Exchange(
        # Orderly Network brokers; orderly-key is "ed25519:<api key>".
        name="woofipro",
        aliases=("modetrade",),
        hosts=("api-evm.orderly.org",),
        budgets=(),
        secret_names=("orderly-key", "orderly-signature"),
    ),
    Exchange(
        name="xt",
        hosts=("sapi.xt.com", "fapi.xt.com", "dapi.xt.com", "api.xt.com"),
        budgets=(),
        secret_names=("xt-validate-appkey", "xt-validate-signature"),
    ),
)


@lru_cache(maxsize=256)
def find_exchange(name: str | None = None, host: str | None = None) -> Exchange | None:
    """The row for an exchange id or alias (case-insensitive), else for an API host."""
    if name:
        wanted = name.lower()
        for row in EXCHANGES:
            if wanted == row.name or wanted in row.aliases:
                return row
    if host:
        wanted = host.lower()
        for row in EXCHANGES:
            if wanted in row.hosts:
                return row
    return None


def all_secret_names() -> frozenset[str]:
    """Every exchange's secret-bearing names (sensitive as a name or a name's end)."""
    return frozenset(n for row in EXCHANGES for n in row.secret_names)


def all_exact_secret_names() -> frozenset[str]:
    """Names that are secret only as the whole name (``KEY``, ``SIGN``)."""
    return frozenset(n for row in EXCHANGES for n in row.exact_secret_names)
