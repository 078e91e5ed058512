"""A simulated carrier on loopback: one SIPp that answers every INVITE as one of the mix's called
parties (a person, a voicemail, busy, no answer, a dead number, a person answering a survey),
chosen per call, and says exactly which INVITEs it received.

    with SimulatedCarrier("human=.3,machine=.2,busy=.1,no_answer=.3,invalid=.1") as carrier:
        ...  # point a trunk at carrier.host:carrier.port and dial
        carrier.invites()   # every INVITE: number, branch, time, how it ended
        carrier.counts()    # INVITEs per branch

What each branch does and for how long is in `dialer.demo.mix`; the SIPp scenario is written by
`dialer.demo.scenario` and its audio rendered (once, then cached) by `dialer.demo.audio`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dialer.demo.audio import CarrierAudio, build_carrier_audio, survey_hold_s
from dialer.demo.mix import DEFAULT_MIX, CarrierTimings, Mix, parse_mix
from dialer.demo.scenario import (
    CarrierMedia,
    LoggedEnd,
    LoggedInvite,
    carrier_scenario,
)
from dialer.demo.sipp import LOOPBACK, SippError, SippPeer, SippUas, can_play_audio


@dataclass(frozen=True)
class Invite:
    """One INVITE the carrier received (retransmissions are the same INVITE)."""

    number: str  # the Request-URI's user part: the trunk's dial string for the lead's number
    branch: str  # human, machine, busy, no_answer, invalid, survey
    at: float  # wall clock (time.time()) when it arrived
    call_id: str
    variant: str  # which greeting, voicemail, intercept or survey pattern; "-" for none
    wait_s: float  # ring time before the pickup (busy: before the 486; invalid: before the 183)
    # survey: the digits keyed, as (seconds after the answer, digit); empty otherwise
    keys: tuple[tuple[float, str], ...] = ()
    ended: str | None = None  # how the call ended (dialer.demo.scenario.ENDINGS); None: not yet
    ended_at: float | None = None


class SimulatedCarrier(SippPeer):
    """The carrier: `start()`, dial `number@host:port`, `stop()` (or use it as a context
    manager). `mix` is a `Mix` or its text (`dialer.demo.mix.parse_mix`); `port` a UDP port on
    `host` (default: a free one); `timings` the called parties' waits (default: the pacing
    workloads'; `CarrierTimings.quick()` answers within a second); `audio_dir` the cache of
    rendered captures (default ~/.cache/dialer/demo-carrier); `workdir` keeps SIPp's folder
    (scenario and logs) there instead of a temporary one removed at stop."""

    def __init__(
        self,
        mix: Mix | str = DEFAULT_MIX,
        *,
        port: int | None = None,
        host: str = LOOPBACK,
        timings: CarrierTimings | None = None,
        audio_dir: Path | None = None,
        workdir: Path | None = None,
    ) -> None:
        super().__init__(host, port)
        self.mix = parse_mix(mix) if isinstance(mix, str) else mix
        self.timings = timings or CarrierTimings()
        self._audio_dir = audio_dir
        self._workdir = workdir
        self.audio: CarrierAudio | None = None

    def trunk_table(self, name: str = "carrier", **settings: str | int | float) -> str:
        """A `[trunks.NAME]` TOML table for `sip_config.loads` pointing at this carrier."""
        lines = [f"[trunks.{name}]", f'host = "{self.host}"', f"port = {self.port}"]
        for key, value in settings.items():
            lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
        return "\n".join(lines) + "\n"

    def _uas(self) -> SippUas:
        if not can_play_audio():
            raise SippError(
                "SIPp plays the called parties' audio through a raw socket: run as root or "
                "give it the capability once: sudo setcap cap_net_raw+ep $(command -v sipp)"
            )
        self.audio = build_carrier_audio(self.timings, self._audio_dir)
        files: dict[str, Path] = {}

        def linked(kind: str, paths: dict[str, Path]) -> tuple[tuple[str, str], ...]:
            names = []
            for variant, path in paths.items():
                file_name = f"{kind}-{variant}.pcap"
                files[file_name] = path
                names.append((variant, file_name))
            return tuple(names)

        media = CarrierMedia(
            human=linked("human", self.audio.human),
            machine=linked("machine", self.audio.machine),
            invalid=linked("invalid", self.audio.invalid),
            survey=linked("survey", self.audio.survey),
            survey_holds=()
            if self.timings.survey_hangs_up_after_keys_s is None
            else tuple(
                survey_hold_s(self.timings, self.audio.answers[name]) for name in self.audio.survey
            ),
            survey_by_number=bool(self.timings.survey_fixed),
        )
        scenario = carrier_scenario(self.mix, self.timings, media)
        return SippUas(
            "carrier", scenario, files, port=self._port, host=self.host, workdir=self._workdir
        )

    def _invite(self, logged: LoggedInvite, end: LoggedEnd | None) -> Invite:
        answers = self.audio.answers.get(logged.variant) if self.audio is not None else None
        return Invite(
            number=logged.number,
            branch=logged.branch,
            at=logged.at,
            call_id=logged.call_id,
            variant=logged.variant,
            wait_s=logged.wait_ms / 1000,
            keys=answers.keys if logged.branch == "survey" and answers is not None else (),
            ended=end.how if end is not None else None,
            ended_at=end.at if end is not None else None,
        )

    def invites(self) -> list[Invite]:
        """Every INVITE received so far, in the order SIPp took them."""
        return [self._invite(logged, end) for logged, end in self._logged()]

    def counts(self) -> Counter[str]:
        """INVITEs received per branch."""
        return Counter(logged.branch for logged, _ in self._logged())

    def poll(self) -> list[Invite]:
        """The calls that arrived or ended since the last poll (for a running log)."""
        return [self._invite(logged, end) for logged, end in self._changed()]
