"""collector/prometheus/rules/ is what ``botmon rules export`` generates today."""

from __future__ import annotations

from pathlib import Path

COMMITTED = (
    Path(__file__).resolve().parents[3]
    / "collector" / "prometheus" / "rules" / "botmon-default-rules.yml"
)
REGENERATE = (
    "botmon rules export --format prometheus "
    "--output collector/prometheus/rules/botmon-default-rules.yml"
)


def test_committed_rules_match_a_fresh_export(tmp_path: Path) -> None:
    from otel_botmon import cli  # the lead's `botmon` entry point

    fresh = tmp_path / "rules.yml"
    exit_code = cli.main(["rules", "export", "--format", "prometheus", "--output", str(fresh)])
    assert exit_code in (0, None)
    assert fresh.read_text() == COMMITTED.read_text(), (
        f"{COMMITTED.name} is stale; regenerate it with: {REGENERATE}"
    )

