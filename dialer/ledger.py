"""The attempt ledger: each call the node places has its `call_attempts` row from before the
INVITE until after the hang-up, written from the line pool's events.

- `open` commits the row before the dial: whatever fails afterwards, the attempt is on record.
  Its id is the pool's attempt id.
- `observe` records the answer, the AMD (or SIT) verdict and the bridge to an agent (connect
  delay, recording), and at `Ended` the SIP result and outcome, recycling the lead by its
  campaign's rules in the same transaction.
- `connected` records what the connector decided: abandoned, safe-harbor message played, and
  a key-press opt-out, which puts the number on the campaign's do-not-call list at once.
- `close_orphans` ends the rows a stopped node left open as failed, so no attempt stays
  "in progress" for ever and its lead is dialable again.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select

from campaigns import db
from campaigns.dispositions import opt_out, record_outcome
from campaigns.models import CallAttempt, Lead
from dialer.connect import ConnectOutcome
from dialer.lines.events import AmdVerdict, Answered, Bridged, Ended, Event

ORPHAN_REASON = "the dialer node stopped before the call ended"


def _utc(epoch_seconds: float | None) -> dt.datetime | None:
    return None if epoch_seconds is None else dt.datetime.fromtimestamp(epoch_seconds, dt.UTC)


class AttemptLedger:
    def __init__(self, engine: Engine, node: str) -> None:
        self.sessions = db.session_factory(engine)
        self.node = node
        # Attempts this ledger opened and not yet ended: the pool's agent legs are not attempts.
        self.open_ids: set[int] = set()

    def open(
        self,
        *,
        lead_id: int,
        campaign_id: int,
        phone_e164: str,
        trunk: str,
        dial_mode: str = "automatic",
        account_ref: str | None = None,
    ) -> str:
        """The attempt's row, committed; its id is what the pool's `originate` is given."""
        with self.sessions() as session:
            attempt = CallAttempt(
                lead_id=lead_id,
                campaign_id=campaign_id,
                phone_e164=phone_e164,
                account_ref=account_ref,
                node=self.node,
                trunk_name=trunk,
                dial_mode=dial_mode,
            )
            session.add(attempt)
            session.commit()
            self.open_ids.add(attempt.id)
            return str(attempt.id)

    def _ours(self, attempt_id: str) -> int | None:
        row_id = int(attempt_id) if attempt_id.isdigit() else None
        return row_id if row_id in self.open_ids else None

    def observe(self, event: Event) -> None:
        if not isinstance(event, Answered | AmdVerdict | Bridged | Ended):
            return
        row_id = self._ours(event.attempt_id)
        if row_id is None:
            return
        with self.sessions() as session:
            attempt = session.get_one(CallAttempt, row_id)
            if isinstance(event, Answered):
                attempt.answered_at = _utc(event.at)
            elif isinstance(event, AmdVerdict):
                attempt.amd_verdict = event.verdict
                attempt.amd_ms = event.after_ms
            elif isinstance(event, Bridged):
                if event.connect_delay_ms is not None:
                    attempt.connect_delay_ms = round(event.connect_delay_ms)
                attempt.recording_path = event.recording_path or attempt.recording_path
            else:
                self._end(attempt, event)
                record_outcome(session, attempt, dt.datetime.now(dt.UTC))
            session.commit()
        if isinstance(event, Ended):
            self.open_ids.discard(row_id)

    def _end(self, attempt: CallAttempt, ended: Ended) -> None:
        attempt.started_at = _utc(ended.timings.dialed_at) or attempt.started_at
        # A worker that died mid-call leaves the supervisor without the answer time: keep the
        # one `Answered` brought.
        attempt.answered_at = _utc(ended.timings.answered_at) or attempt.answered_at
        attempt.ended_at = _utc(ended.timings.ended_at)
        attempt.sip_code = ended.sip_code
        attempt.sip_reason = ended.reason[:120]
        attempt.outcome = ended.outcome
        attempt.amd_verdict = ended.amd_verdict or attempt.amd_verdict
        if ended.outcome == "failed":
            attempt.failure_reason = ended.reason

    def connected(self, outcome: ConnectOutcome) -> None:
        """The connector's result for a customer call; it comes after the call's `Ended`."""
        if not outcome.customer.isdigit():
            return
        with self.sessions() as session:
            attempt = session.get(CallAttempt, int(outcome.customer))
            if attempt is None or attempt.node != self.node:
                return
            attempt.abandoned = outcome.abandoned
            attempt.safe_harbor_played = outcome.safe_harbor_played
            if outcome.connect_delay_ms is not None:
                attempt.connect_delay_ms = round(outcome.connect_delay_ms)
            attempt.recording_path = outcome.recording_path or attempt.recording_path
            if outcome.opted_out:
                lead = session.get_one(Lead, attempt.lead_id)
                why = "pressed the opt-out key after the safe-harbor message"
                opt_out(session, lead, attempt.campaign_id, "opt_out_key", why)
            session.commit()

    def close_orphans(self, now: dt.datetime) -> int:
        """Ends this node's attempts that never got an `Ended` (the node crashed or was
        killed): failed, saying why, and their leads recycled."""
        with self.sessions() as session:
            orphans = session.scalars(
                select(CallAttempt).where(
                    CallAttempt.node == self.node, CallAttempt.ended_at.is_(None)
                )
            ).all()
            for attempt in orphans:
                attempt.ended_at = now
                attempt.outcome = "failed"
                attempt.failure_reason = ORPHAN_REASON
                record_outcome(session, attempt, now)
            session.commit()
        return len(orphans)
