"""A campaign's report: its attempts by outcome, live answers and abandons (today and over the
rolling 30 days of the abandon rule, counted as the hopper counts them), what its agentless
flows made of the calls, dispositions by code, promises to pay, its leads by status and, for
appointment setting, its appointments by status."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, func, select

from campaigns.compliance import ABANDON_WINDOW
from campaigns.models import (
    ABANDONED,
    LIVE_ANSWER,
    Appointment,
    CallAttempt,
    Campaign,
    Disposition,
    Lead,
)
from campaigns.why import CampaignNotFound

# An attempt with no outcome yet: the call is still up, or its node stopped before it ended.
IN_PROGRESS = "in_progress"
CENT = Decimal("0.01")


@dataclass
class Period:
    """One stretch of the campaign's history: since its start, up to the report's instant."""

    name: str
    since: dt.datetime
    by_outcome: dict[str, int] = field(default_factory=dict)
    live_answers: int = 0
    abandons: int = 0
    dispositions: dict[str, int] = field(default_factory=dict)
    # What an agentless flow made of its calls: a survey completed, partly answered or not at
    # all; a reminder confirmed, rescheduled, cancelled, put through to an agent.
    ivr_results: dict[str, int] = field(default_factory=dict)
    promises: int = 0
    promised: Decimal = Decimal("0.00")

    @property
    def attempts(self) -> int:
        return sum(self.by_outcome.values())

    @property
    def abandon_rate(self) -> float | None:
        """Abandons over live answers (47 CFR 64.1200(a)(7)); None without live answers."""
        return self.abandons / self.live_answers if self.live_answers else None

    def as_json(self, collections: bool) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "since": self.since.isoformat(),
            "attempts": self.attempts,
            "by_outcome": dict(sorted(self.by_outcome.items())),
            "live_answers": self.live_answers,
            "abandons": self.abandons,
            "abandon_rate": self.abandon_rate,
            "dispositions": dict(sorted(self.dispositions.items())),
            "ivr_results": dict(sorted(self.ivr_results.items())),
        }
        if collections:
            figures["promises_to_pay"] = {"count": self.promises, "amount": str(self.promised)}
        return figures


@dataclass(frozen=True)
class CampaignReport:
    campaign: str
    kind: str
    abandon_target: float
    at: dt.datetime
    today: Period
    window: Period
    leads_by_status: dict[str, int]
    appointments_by_status: dict[str, int] = field(default_factory=dict)

    @property
    def collections(self) -> bool:
        return self.kind == "collections"

    def as_json(self) -> dict[str, Any]:
        figures = {
            "campaign": self.campaign,
            "kind": self.kind,
            "at": self.at.isoformat(),
            "abandon_target": self.abandon_target,
            "today": self.today.as_json(self.collections),
            "last_30_days": self.window.as_json(self.collections),
            "leads_by_status": dict(sorted(self.leads_by_status.items())),
        }
        if self.kind == "appointment":
            figures["appointments_by_status"] = dict(sorted(self.appointments_by_status.items()))
        return figures

    def text(self) -> str:
        """A short table for a terminal."""
        today, window = self.today, self.window
        lines = [
            f"Campaign {self.campaign!r} ({self.kind}) at {self.at:%Y-%m-%d %H:%M %Z}",
            f"{'':24}{'today':>12}{'30 days':>12}",
            f"{'attempts':24}{today.attempts:>12,}{window.attempts:>12,}",
        ]
        for outcome in sorted(window.by_outcome):
            lines.append(
                f"  {outcome:22}{today.by_outcome.get(outcome, 0):>12,}"
                f"{window.by_outcome[outcome]:>12,}"
            )
        lines += [
            f"{'live answers':24}{today.live_answers:>12,}{window.live_answers:>12,}",
            f"{'abandons':24}{today.abandons:>12,}{window.abandons:>12,}",
            f"{'abandon rate':24}{_rate(today):>12}{_rate(window):>12}"
            f"   (cap {self.abandon_target:.2%})",
            f"{'dispositions':24}{sum(today.dispositions.values()):>12,}"
            f"{sum(window.dispositions.values()):>12,}",
        ]
        for code in sorted(window.dispositions):
            lines.append(
                f"  {code:22}{today.dispositions.get(code, 0):>12,}{window.dispositions[code]:>12,}"
            )
        if window.ivr_results:
            lines.append(
                f"{'agentless calls':24}{sum(today.ivr_results.values()):>12,}"
                f"{sum(window.ivr_results.values()):>12,}"
            )
            for result in sorted(window.ivr_results):
                lines.append(
                    f"  {result:22}{today.ivr_results.get(result, 0):>12,}"
                    f"{window.ivr_results[result]:>12,}"
                )
        if self.collections:
            lines += [
                f"{'promises to pay':24}{today.promises:>12,}{window.promises:>12,}",
                f"{'  amount promised':24}{today.promised:>12,}{window.promised:>12,}",
            ]
        statuses = ", ".join(f"{s} {n:,}" for s, n in sorted(self.leads_by_status.items()))
        lines.append(f"leads by status: {statuses or 'none'}")
        if self.kind == "appointment":
            booked = self.appointments_by_status.items()
            lines.append(
                f"appointments by status: {', '.join(f'{s} {n:,}' for s, n in sorted(booked))}"
                if booked
                else "appointments by status: none"
            )
        return "\n".join(lines)


def _rate(period: Period) -> str:
    rate = period.abandon_rate
    return "-" if rate is None else f"{rate:.2%}"


def day_start(at: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Midnight of `at`'s calendar day in `zone`."""
    local = at.astimezone(zone)
    return dt.datetime.combine(local.date(), dt.time(), zone)


def campaign_report(
    engine: Engine, name: str, at: dt.datetime, zone: ZoneInfo | None = None
) -> CampaignReport:
    """The report of campaign `name` as of `at`; "today" starts at midnight in `zone` (UTC by
    default), the 30 days are the abandon rule's rolling window, as the hopper counts it."""
    if at.tzinfo is None:
        raise ValueError("at must carry a time zone")
    zone = zone or ZoneInfo("UTC")
    window_start = at - ABANDON_WINDOW
    with engine.connect() as connection:
        campaign = connection.execute(
            select(Campaign.id, Campaign.kind, Campaign.abandon_target).where(Campaign.name == name)
        ).first()
        if campaign is None:
            raise CampaignNotFound(f"no campaign named {name!r}")
        today = Period("today", max(day_start(at, zone), window_start))
        window = Period("last 30 days", window_start)
        # The hopper's window: attempts started after its start (it reads no upper bound).
        started_today = CallAttempt.started_at >= today.since
        for outcome, *counts in connection.execute(
            select(
                CallAttempt.outcome,
                func.count(),
                func.count().filter(started_today),
                func.count().filter(LIVE_ANSWER),
                func.count().filter(and_(started_today, LIVE_ANSWER)),
                func.count().filter(ABANDONED),
                func.count().filter(and_(started_today, ABANDONED)),
            )
            .where(
                CallAttempt.campaign_id == campaign.id,
                CallAttempt.started_at > window_start,
            )
            .group_by(CallAttempt.outcome)
        ):
            n, n_today, live, live_today, abandons, abandons_today = counts
            key = outcome or IN_PROGRESS
            window.by_outcome[key] = n
            window.live_answers += live
            window.abandons += abandons
            if n_today:
                today.by_outcome[key] = n_today
            today.live_answers += live_today
            today.abandons += abandons_today
        for result, n, n_today in connection.execute(
            select(CallAttempt.ivr_result, func.count(), func.count().filter(started_today))
            .where(
                CallAttempt.campaign_id == campaign.id,
                CallAttempt.started_at > window_start,
                CallAttempt.ivr_result.is_not(None),
            )
            .group_by(CallAttempt.ivr_result)
        ):
            window.ivr_results[result] = n
            if n_today:
                today.ivr_results[result] = n_today
        recorded_today = Disposition.created_at >= today.since
        promised = Disposition.promise_amount.is_not(None)
        for code, *counts in connection.execute(
            select(
                Disposition.code,
                func.count(),
                func.count().filter(recorded_today),
                func.count().filter(promised),
                func.count().filter(and_(recorded_today, promised)),
                func.sum(Disposition.promise_amount),
                func.sum(Disposition.promise_amount).filter(recorded_today),
            )
            .join(Lead, Lead.id == Disposition.lead_id)
            .where(Lead.campaign_id == campaign.id, Disposition.created_at > window_start)
            .group_by(Disposition.code)
        ):
            n, n_today, promises, promises_today, amount, amount_today = counts
            window.dispositions[code] = n
            if n_today:
                today.dispositions[code] = n_today
            window.promises += promises
            today.promises += promises_today
            # SQLite sums NUMERIC as floating point: back to cents.
            window.promised += Decimal(amount or 0).quantize(CENT)
            today.promised += Decimal(amount_today or 0).quantize(CENT)
        leads_by_status = dict(
            connection.execute(
                select(Lead.status, func.count())
                .where(Lead.campaign_id == campaign.id)
                .group_by(Lead.status)
            ).all()
        )
        appointments_by_status = dict(
            connection.execute(
                select(Appointment.status, func.count())
                .where(Appointment.campaign_id == campaign.id)
                .group_by(Appointment.status)
            ).all()
        )
    return CampaignReport(
        name,
        campaign.kind,
        campaign.abandon_target,
        at,
        today,
        window,
        leads_by_status,
        appointments_by_status,
    )
