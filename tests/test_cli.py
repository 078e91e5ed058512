from click.testing import CliRunner

from dialer.cli import main


def test_help_lists_command_groups() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert "bench" in result.output


def test_serve_once_migrates_and_runs_every_scheduler_job(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from campaigns.db import current_revision

    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    result = CliRunner().invoke(main, ["serve", "--once"])
    assert result.exit_code == 0, result.output
    for job in ("release_orphaned_claims", "roll_up_hours", "settle_forgotten_wrap_ups"):
        assert f"ran job {job}" in result.output
    assert current_revision(url) is not None


def test_simulate_offers_agents_carrier_and_phones() -> None:
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0, result.output
    for command in ("agents", "carrier", "phones"):
        assert f"  {command} " in result.output
