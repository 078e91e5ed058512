"""The agents' phones, simulated: one SIPp that answers every INVITE at once, whatever the user
part (`sip:agent7@127.0.0.1:PORT` reaches it as well as `sip:anna@...`), echoes the audio it
gets, and keeps each call until the dialer hangs up, as a softphone with auto-answer on does.

    with AgentPhones() as phones:
        uri = phones.uri("agent7")   # the agent's phone URI
        ...
        phones.calls()               # every call answered: agent, time, how it ended
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from dialer.demo.scenario import LoggedEnd, LoggedInvite, phones_scenario
from dialer.demo.sipp import LOOPBACK, SippPeer, SippUas

# A conversation lasts minutes; a phone the dialer forgot to hang up hangs up after this.
HANGS_UP_S = 3600.0


@dataclass(frozen=True)
class AgentCall:
    agent: str  # the user part of the URI the dialer called
    at: float  # wall clock when the INVITE arrived (answered at once)
    call_id: str
    # The INVITE asked for auto-answer (Call-Info: ...;answer-after=0), as the connector does.
    auto_answer: bool
    ended: str | None = None  # dialer_bye, customer_bye (the phone's own timeout), late_cancel
    ended_at: float | None = None


class AgentPhones(SippPeer):
    """`port` a UDP port on `host` (default: a free one); `hangs_up_s` the safety net;
    `echo` sends every call's audio back (the agent "speaks" what they hear)."""

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = LOOPBACK,
        hangs_up_s: float = HANGS_UP_S,
        echo: bool = True,
    ) -> None:
        if not hangs_up_s >= 1:
            raise ValueError(f"hangs_up_s={hangs_up_s!r}: expected at least 1 s")
        super().__init__(host, port)
        self.hangs_up_s = hangs_up_s
        self.echo = echo

    def uri(self, name: str) -> str:
        """The SIP URI of agent `name`'s phone."""
        if not name or any(c in name for c in "@:;<> \t"):
            raise ValueError(f"agent phone name {name!r}: expected a SIP user part, e.g. agent7")
        return f"sip:{name}@{self.host}:{self.port}"

    def _uas(self) -> SippUas:
        scenario = phones_scenario(self.hangs_up_s)
        return SippUas("phones", scenario, port=self._port, host=self.host, rtp_echo=self.echo)

    @staticmethod
    def _call(logged: LoggedInvite, end: LoggedEnd | None) -> AgentCall:
        return AgentCall(
            agent=logged.number,
            at=logged.at,
            call_id=logged.call_id,
            auto_answer=logged.variant.startswith("answer-after="),
            ended=end.how if end is not None else None,
            ended_at=end.at if end is not None else None,
        )

    def calls(self) -> list[AgentCall]:
        """Every call the phones answered, in order of arrival."""
        return [self._call(logged, end) for logged, end in self._logged()]

    def answered(self) -> int:
        return len(self._logged())

    def counts(self) -> Counter[str]:
        """Calls answered per agent."""
        return Counter(logged.number for logged, _ in self._logged())

    def poll(self) -> list[AgentCall]:
        """The calls that arrived or ended since the last poll."""
        return [self._call(logged, end) for logged, end in self._changed()]
