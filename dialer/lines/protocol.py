"""What the node needs from a set of lines, whatever carries the calls: the pjsua2 pool
(`dialer.lines.pool.LinePool`) or a simulated carrier for demos."""

from __future__ import annotations

from typing import Protocol

from dialer.lines.events import DtmfMethod, Event, TapSpec


class Lines(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def originate(
        self,
        attempt_id: str,
        trunk: str,
        number: str,
        *,
        ring_timeout: float | None = None,
        tap: TapSpec | None = None,
        near: str | None = None,
        reserve_agent_slot: bool = False,
        caller_id: str | None = None,
    ) -> None:
        """Dial; exactly one `Ended` event follows for `attempt_id`, whatever happens.
        `reserve_agent_slot`: keep room next to this call for the agent leg it may need;
        `caller_id`: the number the called party sees (default: the trunk's)."""

    def call_agent(
        self,
        attempt_id: str,
        uri: str,
        *,
        near: str,
        headers: tuple[tuple[str, str], ...] = (),
        ring_timeout: float = ...,
    ) -> None:
        """Dial an agent's phone in the worker holding `near`; one `Ended` follows too."""

    def hangup(self, attempt_id: str) -> None: ...

    def play(self, attempt_id: str, path: str) -> None: ...

    def record(self, attempt_id: str, path: str) -> None: ...

    def stop_record(self, attempt_id: str) -> None: ...

    def send_dtmf(self, attempt_id: str, digits: str, method: DtmfMethod = "rfc2833") -> None: ...

    def attach_tap(self, attempt_id: str, tap: TapSpec) -> None: ...

    def bridge(
        self, attempt_id: str, other_attempt_id: str, *, record_path: str | None = None
    ) -> None:
        """Both legs hear each other; with `record_path`, both are recorded there, mixed."""

    def next_event(self, timeout: float | None = None) -> Event | None: ...
