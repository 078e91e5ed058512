from click.testing import CliRunner

from dialer.cli import main


def test_help_lists_command_groups() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert "bench" in result.output


def test_serve_once_migrates_seeds_the_demo_and_runs_its_jobs(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from campaigns.db import make_engine
    from campaigns.models import Lead

    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    result = CliRunner().invoke(main, ["serve", "--demo", "--once"])
    assert result.exit_code == 0, result.output
    assert (
        "200 leads imported" in result.output and "ran job release_orphaned_claims" in result.output
    )
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Lead)) == 200
    engine.dispose()
