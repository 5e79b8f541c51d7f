"""GuardPolicy remembers the Host and Origin values it allowed: the same verdicts as
parsing them each time, nothing denied remembered, and bounded memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon.dashboard import security
from otel_botmon.dashboard.security import GuardPolicy

NAMES = st.sampled_from(["127.0.0.1", "localhost", "LOCALHOST.", "[::1]", "::1", "evil.test",
                         "10.0.0.7", "bot.example", "127.0.0.2", "0.0.0.0", "", "[::1"])
PORTS = st.sampled_from(["", ":8001", ":80", ":443", ":x", ":", ":8001:1", ":٣"])
HOSTS = st.builds(lambda n, p: n + p, NAMES, PORTS)
ORIGINS = st.one_of(
    st.builds(lambda s, h: s + h, st.sampled_from(["http://", "https://", "HTTP://", "ws://"]),
              HOSTS),
    st.sampled_from(["null", "https://grafana.example:3000", "http://bot.example/"]))
POLICIES = st.builds(
    GuardPolicy, bind_host=st.sampled_from(["127.0.0.1", "0.0.0.0", "bot.example", "::"]),
    allowed_hosts=st.sampled_from([(), ("bot.example",)]),
    allowed_origins=st.sampled_from([(), ("https://grafana.example:3000",)]))


@settings(max_examples=300)
@given(POLICIES, st.lists(st.tuples(HOSTS, ORIGINS), min_size=1, max_size=12))
def test_remembered_verdicts_equal_parsing_each_time(
    policy: GuardPolicy, requests: list[tuple[str, str]],
) -> None:
    for _ in range(2):  # the second time, what was allowed is a lookup
        for host, origin in requests:
            assert policy.host_allowed(host) is policy._host_allowed(host)
            assert policy.origin_allowed(origin, host) is policy._origin_allowed(origin, host)
            assert policy.origin_allowed(origin, None) is policy._origin_allowed(origin, None)


def test_a_denied_host_or_origin_is_never_remembered() -> None:
    policy = GuardPolicy()
    for _ in range(3):
        assert not policy.host_allowed("evil.test:8001")
        assert not policy.origin_allowed("http://evil.test:8001", "127.0.0.1:8001")
    assert policy._allowed_hosts_seen == set()
    assert policy._allowed_origins_seen == set()


def test_what_is_remembered_stays_bounded() -> None:
    policy = GuardPolicy(bind_host="0.0.0.0")  # any IP literal is allowed: endless values
    for i in range(3 * security._SEEN_SIZE):
        host = f"10.0.{i // 256}.{i % 256}:8001"
        assert policy.host_allowed(host)
        assert policy.origin_allowed(f"http://{host}", host)
    assert policy.host_allowed("127.0.0.1:" + "0" * 4096)  # allowed, too long to keep
    assert len(policy._allowed_hosts_seen) <= security._SEEN_SIZE
    assert len(policy._allowed_origins_seen) <= security._SEEN_SIZE
    assert all(len(h) <= security._SEEN_MAX_CHARS for h in policy._allowed_hosts_seen)


def test_policies_compare_and_hash_by_their_settings_only() -> None:
    used = GuardPolicy()
    assert used.host_allowed("127.0.0.1:8001")
    assert used == GuardPolicy()
    assert hash(used) == hash(GuardPolicy())
