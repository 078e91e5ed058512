"""The `dialer` command: the one place that assembles console, scheduler and dialer node."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dialer")
def main() -> None:
    """Outbound dialer and campaign manager."""


@main.group()
def bench() -> None:
    """Benchmarks that print figures (never asserted in tests)."""
