"""The SIPp scenarios of the simulated carrier and of the agents' phones, written from a mix and
timings (pure: text out), and the lines they log, read back.

SIPp 3.6.1 (Debian's) picks a branch per call inside the scenario: `<sample>` draws a uniform
number, `<test>` compares it with the mix's cumulative shares, `<nop test=... next=...>` jumps
to the branch. A random wait that a CANCEL may interrupt is one of `DELAY_POINTS` fixed
`<recv request="CANCEL" timeout=...>` steps, chosen the same way (a `<pause>` would treat the
dialer's CANCEL as an unexpected message and drop the call without its 487).

Each call writes one `invite` line when its INVITE arrives and one `end` line when it ends the
way the scenario meant. A retransmitted INVITE is never a second line: SIPp matches it to its
call by Call-ID, and remembers ended calls for -deadcall_wait. (It answers a copy that comes
before its second response with its first, the 100; a later copy it takes as unexpected and
drops the call, which then has no end line. pjsua sends copies only when no 100 came within
500 ms, that is when SIPp has fallen that far behind.)

    invite|<s>|<us>|<call number>|<Call-ID>|<branch>|<variant>|<wait ms>|INVITE sip:<user>@
    end|<s>|<us>|<call number>|<how>

(<s> and <us>: the wall clock, SIPp's gettimeofday.)

The called number is the Request-URI's user part, as the carrier sees it (a trunk's dial prefix
and number format applied). SIPp flushes its log after every line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from dialer.demo.mix import CarrierTimings, Delay, Mix

# How a call ended, in the `end` lines.
ENDINGS = (
    "cancelled",  # the dialer gave up before an answer: 200 to the CANCEL, 487
    "late_cancel",  # the dialer's CANCEL crossed the 200: it then hung up with BYE
    "dialer_bye",  # the dialer hung up an answered call
    "customer_bye",  # the called party hung up by itself (the safety net's timeout)
    "busy",  # 486 Busy Here
    "gave_up",  # nobody answered within no_answer_gives_up_s: 480 Temporarily Unavailable
    "not_found",  # the intercept ran out without a CANCEL: 404 Not Found
    "timed_out",  # the dialer did not send the ACK, BYE or 200 the call waited for
)
# A UAS retransmits its final response for 64 x T1 = 32 s (RFC 3261 17.2.1) before giving up.
_TRANSACTION_MS = 32_000
_ACK = f'  <recv request="ACK" timeout="{_TRANSACTION_MS}" ontimeout="timed_out"/>'
_LATE_BYE = f'  <recv request="BYE" timeout="{_TRANSACTION_MS}" ontimeout="timed_out"/>'
_BYE_ANSWER = f'  <recv response="200" timeout="{_TRANSACTION_MS}" ontimeout="timed_out"/>'
# What SIPp puts before the number in an invite line (the Request-URI's start).
_URI_HEAD = "INVITE sip:"

_SDP = """\
      v=0
      o=- 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 120
      a=rtpmap:8 PCMA/8000
      a=rtpmap:120 telephone-event/8000
      a=fmtp:120 0-16"""


def _response(status: str, *, to_tag: bool = True, cseq: str = "[last_CSeq:]", sdp: bool = False,
              retrans: bool = False, contact: bool = True) -> str:  # fmt: skip
    to = "[last_To:];tag=[pid]SIPpTag01[call_number]" if to_tag else "[last_To:]"
    lines = [f"      SIP/2.0 {status}", "      [last_Via:]", "      [last_From:]", f"      {to}",
             "      [last_Call-ID:]", f"      {cseq}"]  # fmt: skip
    if contact:
        lines.append("      Contact: <sip:[local_ip]:[local_port];transport=[transport]>")
    if sdp:
        lines += ["      Content-Type: application/sdp", "      Content-Length: [len]", "", _SDP]
    else:
        lines.append("      Content-Length: 0")
    body = "\n".join(lines)
    attributes = ' retrans="500"' if retrans else ""
    return f"  <send{attributes}>\n    <![CDATA[\n{body}\n    ]]>\n  </send>"


_CUSTOMER_BYE = """\
  <send retrans="500">
    <![CDATA[
      BYE [$remote_contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$local_to];tag=[pid]SIPpTag01[call_number]
      To: [$remote_from]
      [last_Call-ID:]
      CSeq: 1 BYE
      Max-Forwards: 70
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]>
  </send>"""


class _Scenario:
    """SIPp XML, a step at a time."""

    def __init__(self, name: str, comment: str) -> None:
        self.steps: list[str] = [
            '<?xml version="1.0" encoding="ISO-8859-1"?>',
            '<!DOCTYPE scenario SYSTEM "sipp.dtd">',
            f"<!-- {comment} -->",
            f'<scenario name="{name}">',
        ]

    def add(self, *steps: str) -> None:
        self.steps.extend(steps)

    def label(self, name: str) -> None:
        self.steps.append(f'  <label id="{name}"/>')

    def action(self, *actions: str, next_label: str | None = None) -> None:
        jump = f' next="{next_label}"' if next_label else ""
        self.steps.append(f"  <nop{jump}><action>{''.join(actions)}</action></nop>")

    def jump(self, label: str) -> None:
        self.steps.append(f'  <nop next="{label}"/>')

    def log(self, message: str, next_label: str | None = None) -> None:
        self.action(f'<log message="{message}"/>', next_label=next_label)

    def choose(self, draw: str, options: Sequence[tuple[str, float]]) -> None:
        """Jump to the first option label whose bound is above a fresh uniform draw; the last
        option takes the rest. `draw` names the booleans kept for `choose_again`."""
        if len(options) > 1:
            self.action('<sample assign_to="u" distribution="uniform" min="0" max="1"/>')
        for index, (label, bound) in enumerate(options[:-1]):
            flag = f"{draw}_{index}"
            self.action(
                f'<test assign_to="{flag}" variable="u" compare="less_than" value="{bound!r}"/>'
            )
            self.add(f'  <nop test="{flag}" next="{label}"/>')
        self.jump(options[-1][0])

    def choose_again(self, draw: str, labels: Sequence[str]) -> None:
        """The same choice as `choose(draw, ...)` made earlier in the call, to other labels."""
        for index, label in enumerate(labels[:-1]):
            self.add(f'  <nop test="{draw}_{index}" next="{label}"/>')
        self.jump(labels[-1])

    def text(self) -> str:
        return "\n".join([*self.steps, "</scenario>", ""])


def _equal_bounds(labels: Sequence[str]) -> list[tuple[str, float]]:
    return [(label, (i + 1) / len(labels)) for i, label in enumerate(labels)]


@dataclass(frozen=True)
class CarrierMedia:
    """The pcap files each branch plays (names as SIPp finds them from its working folder),
    by variant name."""

    human: tuple[tuple[str, str], ...]
    machine: tuple[tuple[str, str], ...]
    invalid: tuple[tuple[str, str], ...]
    survey: tuple[tuple[str, str], ...]
    # Seconds each survey variant stays on after the answer (default: survey_hangs_up_s).
    survey_holds: tuple[float, ...] = ()
    # The survey's variant is the one the called number's last digit picks (d mod count).
    survey_by_number: bool = False


def _invite_line(branch: str, wait_ms: int) -> str:
    return (
        f"invite|[$secs]|[$usecs]|[call_number]|[call_id]|{branch}|[$variant]|{wait_ms}|"
        "[$request_uri]"
    )


def _end_line(how: str) -> str:
    return f"end|[$end_secs]|[$end_usecs]|[call_number]|{how}"


def _end(scenario: _Scenario, how: str) -> None:
    scenario.action(
        '<gettimeofday assign_to="end_secs,end_usecs"/>',
        f'<log message="{_end_line(how)}"/>',
        next_label="end",
    )


def _variants(scenario: _Scenario, branch: str, variants: Sequence[tuple[str, str]]) -> None:
    """Pick the branch's variant (kept for the log and for `_play`), then go to its wait."""
    labels = [f"{branch}_variant{i}" for i in range(len(variants))]
    scenario.choose(f"{branch}_v", _equal_bounds(labels))
    for label, (name, _) in zip(labels, variants, strict=True):
        scenario.label(label)
        scenario.action(
            f'<assignstr assign_to="variant" value="{name}"/>', next_label=f"{branch}_wait"
        )


def _variants_by_number(
    scenario: _Scenario, branch: str, variants: Sequence[tuple[str, str]]
) -> None:
    """Pick the variant by the called number's last digit (`last_digit`, "5@"), and set the
    flags `_play` reads as `choose` would have."""
    labels = [f"{branch}_variant{i}" for i in range(len(variants))]
    for digit in range(10):
        scenario.action(
            f'<strcmp assign_to="digit_cmp" variable="last_digit" value="{digit}@"/>',
            f'<test assign_to="digit_is_{digit}" variable="digit_cmp" compare="equal" value="0"/>',
        )
        scenario.add(f'  <nop test="digit_is_{digit}" next="{labels[digit % len(labels)]}"/>')
    scenario.jump(labels[0])
    for index, (label, (name, _)) in enumerate(zip(labels, variants, strict=True)):
        scenario.label(label)
        flags = "".join(
            f'<test assign_to="{branch}_v_{j}" variable="variant_index" compare="less_than" '
            f'value="{j + 0.5!r}"/>'
            for j in range(len(variants) - 1)
        )
        scenario.action(
            f'<assign assign_to="variant_index" value="{index}"/>',
            flags,
            f'<assignstr assign_to="variant" value="{name}"/>',
            next_label=f"{branch}_wait",
        )


def _play(
    scenario: _Scenario,
    branch: str,
    variants: Sequence[tuple[str, str]],
    holds: Sequence[float] = (),
) -> None:
    """Play the variant's capture, then hold (each variant its own time, when given)."""
    labels = [f"{branch}_play{i}" for i in range(len(variants))]
    scenario.choose_again(f"{branch}_v", labels)
    for index, (label, (_, pcap)) in enumerate(zip(labels, variants, strict=True)):
        scenario.label(label)
        hold = f"{branch}_hold{index}" if holds else f"{branch}_hold"
        scenario.action(f'<exec play_pcap_audio="{pcap}"/>', next_label=hold)
    for index, seconds in enumerate(holds):
        scenario.label(f"{branch}_hold{index}")
        scenario.add(
            f'  <recv request="BYE" timeout="{round(seconds * 1000)}" ontimeout="customer_bye" '
            'next="dialer_bye"/>'
        )


def _wait(scenario: _Scenario, branch: str, delay: Delay, then: str) -> None:
    """Log the call's invite line, then wait a drawn time for a CANCEL before going on."""
    scenario.label(f"{branch}_wait")
    waits = delay.milliseconds()
    labels = [f"{branch}_wait{i}" for i in range(len(waits))]
    if len(waits) == 1:
        scenario.jump(labels[0])
    else:
        scenario.choose(f"{branch}_w", _equal_bounds(labels))
    for label, wait_ms in zip(labels, waits, strict=True):
        scenario.label(label)
        scenario.log(_invite_line(branch, wait_ms))
        if wait_ms > 0:
            scenario.add(
                f'  <recv request="CANCEL" timeout="{wait_ms}" ontimeout="{then}" '
                'next="cancelled"/>'
            )
        else:  # a recv timeout of 0 would wait for ever
            scenario.jump(then)


def _answered(scenario: _Scenario, branch: str, media: Sequence[tuple[str, str]],
              hangs_up_s: float, holds: Sequence[float] = ()) -> None:  # fmt: skip
    scenario.label(f"{branch}_answer")
    scenario.add(_response("200 OK", sdp=True, retrans=True))
    # A ring timeout firing as the 200 leaves: the dialer's CANCEL crosses it.
    scenario.add('  <recv request="CANCEL" optional="true" next="late_cancel"/>')
    scenario.add(_ACK)
    _play(scenario, branch, media, holds)
    scenario.label(f"{branch}_hold")
    scenario.add(
        f'  <recv request="BYE" timeout="{round(hangs_up_s * 1000)}" ontimeout="customer_bye" '
        'next="dialer_bye"/>'
    )


def carrier_scenario(mix: Mix, timings: CarrierTimings, media: CarrierMedia) -> str:
    """The carrier's UAS scenario: every INVITE takes a branch of `mix`."""
    scenario = _Scenario("simulated carrier", f"A simulated carrier: {mix}, chosen per call.")
    scenario.add(
        '  <recv request="INVITE">',
        "    <action>",
        f'      <ereg regexp="^{_URI_HEAD}[^@;> ]*@" search_in="msg" assign_to="request_uri"/>',
        '      <ereg regexp="sip:[^>]*" search_in="hdr" header="Contact:" '
        'assign_to="remote_contact"/>',
        '      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="remote_from"/>',
        '      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="local_to"/>',
        '      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="inv_cseq"/>',
        # The Request-URI's last digit and the @ after it: the first such match in the message.
        *(
            ['      <ereg regexp="[0-9]@" search_in="msg" assign_to="last_digit"/>']
            if media.survey_by_number and "survey" in dict(mix.shares)
            else []
        ),
        '      <gettimeofday assign_to="secs,usecs"/>',
        # Branches without variants log a dash.
        '      <assignstr assign_to="variant" value="-"/>',
        "    </action>",
        "  </recv>",
        _response("100 Trying", contact=False),
    )
    scenario.choose("branch", mix.thresholds())
    branches = dict(mix.shares)
    if "human" in branches:
        scenario.label("human")
        scenario.add(_response("180 Ringing"))
        _variants(scenario, "human", media.human)
        _wait(scenario, "human", timings.human_pickup, "human_answer")
        _answered(scenario, "human", media.human, timings.human_hangs_up_s)
    if "survey" in branches:
        scenario.label("survey")
        scenario.add(_response("180 Ringing"))
        if media.survey_by_number:
            _variants_by_number(scenario, "survey", media.survey)
        else:
            _variants(scenario, "survey", media.survey)
        _wait(scenario, "survey", timings.human_pickup, "survey_answer")
        _answered(scenario, "survey", media.survey, timings.survey_hangs_up_s, media.survey_holds)
    if "machine" in branches:
        scenario.label("machine")
        scenario.add(_response("180 Ringing"))
        _variants(scenario, "machine", media.machine)
        _wait(scenario, "machine", timings.machine_pickup, "machine_answer")
        _answered(scenario, "machine", media.machine, timings.machine_hangs_up_s)
    if "busy" in branches:
        scenario.label("busy")
        scenario.jump("busy_wait")
        _wait(scenario, "busy", timings.busy_after, "busy_now")
        scenario.label("busy_now")
        scenario.add(_response("486 Busy Here", retrans=True), _ACK)
        _end(scenario, "busy")
    if "no_answer" in branches:
        scenario.label("no_answer")
        scenario.add(_response("180 Ringing"))
        scenario.log(_invite_line("no_answer", 0))
        scenario.add(
            '  <recv request="CANCEL" '
            f'timeout="{round(timings.no_answer_gives_up_s * 1000)}" ontimeout="gave_up" '
            'next="cancelled"/>'
        )
        scenario.label("gave_up")
        scenario.add(_response("480 Temporarily Unavailable", retrans=True), _ACK)
        _end(scenario, "gave_up")
    if "invalid" in branches:
        scenario.label("invalid")
        _variants(scenario, "invalid", media.invalid)
        _wait(scenario, "invalid", timings.invalid_after, "invalid_announce")
        scenario.label("invalid_announce")
        scenario.add(_response("183 Session Progress", sdp=True))
        _play(scenario, "invalid", media.invalid)
        scenario.label("invalid_hold")
        scenario.add(
            '  <recv request="CANCEL" '
            f'timeout="{round(timings.invalid_gives_up_s * 1000)}" ontimeout="not_found" '
            'next="cancelled"/>'
        )
        scenario.label("not_found")
        scenario.add(_response("404 Not Found", retrans=True), _ACK)
        _end(scenario, "not_found")
    _endings(scenario, before_answer=True)
    return scenario.text()


def _endings(scenario: _Scenario, before_answer: bool) -> None:
    """The ways a call ends that several branches share; `before_answer`: with a CANCEL
    taken before the answer."""
    if before_answer:
        scenario.label("cancelled")
        scenario.add(
            _response("200 OK", contact=False),
            _response("487 Request Terminated", cseq="CSeq: [$inv_cseq] INVITE", retrans=True),
            _ACK,
        )
        _end(scenario, "cancelled")
    scenario.label("late_cancel")
    scenario.add(
        _response("200 OK", contact=False),
        _ACK,
        _LATE_BYE,
        _response("200 OK", to_tag=False, contact=False),
    )
    _end(scenario, "late_cancel")
    scenario.label("dialer_bye")
    scenario.add(_response("200 OK", to_tag=False, contact=False))
    _end(scenario, "dialer_bye")
    scenario.label("customer_bye")
    scenario.add(
        _CUSTOMER_BYE,
        # The dialer's own BYE may cross ours.
        '  <recv request="BYE" optional="true" next="crossed_bye"/>',
        _BYE_ANSWER,
    )
    _end(scenario, "customer_bye")
    scenario.label("crossed_bye")
    scenario.add(_response("200 OK", to_tag=False, contact=False))
    _end(scenario, "customer_bye")
    scenario.label("timed_out")
    _end(scenario, "timed_out")
    scenario.label("end")


def phones_scenario(hangs_up_s: float) -> str:
    """Agents' phones: answer every INVITE at once, whatever the user part, and keep the call
    until the dialer's BYE (or hang up after `hangs_up_s`). Run with -rtp_echo."""
    scenario = _Scenario("agent phones", "Auto-answering agent phones, any user part.")
    scenario.add(
        '  <recv request="INVITE">',
        "    <action>",
        f'      <ereg regexp="^{_URI_HEAD}[^@;> ]*@" search_in="msg" assign_to="request_uri"/>',
        '      <ereg regexp="sip:[^>]*" search_in="hdr" header="Contact:" '
        'assign_to="remote_contact"/>',
        '      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="remote_from"/>',
        '      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="local_to"/>',
        # What the dialer asked for: Call-Info answer-after (empty when the header is absent).
        '      <ereg regexp="answer-after=[0-9]+" search_in="hdr" header="Call-Info:" '
        'assign_to="variant"/>',
        '      <gettimeofday assign_to="secs,usecs"/>',
        "    </action>",
        "  </recv>",
    )
    scenario.log(_invite_line("agent", 0))
    scenario.add(
        _response("200 OK", sdp=True, retrans=True),
        '  <recv request="CANCEL" optional="true" next="late_cancel"/>',
        _ACK,
        f'  <recv request="BYE" timeout="{round(hangs_up_s * 1000)}" ontimeout="customer_bye" '
        'next="dialer_bye"/>',
    )
    _endings(scenario, before_answer=False)
    return scenario.text()


@dataclass(frozen=True)
class LoggedInvite:
    at: float  # wall clock (time.time()) when SIPp took the INVITE
    call_number: int  # SIPp's own, unique per process
    call_id: str
    branch: str
    variant: str  # "-" for branches without variants
    wait_ms: int  # drawn ring (or busy, intercept) time before the answer or rejection
    number: str  # the Request-URI's user part


@dataclass(frozen=True)
class LoggedEnd:
    at: float
    call_number: int
    how: str


def _seconds(secs: str, usecs: str) -> float:
    return float(secs) + float(usecs) / 1e6


def parse_log_line(line: str) -> LoggedInvite | LoggedEnd:
    """One line the scenarios log (without its newline)."""
    kind, _, rest = line.partition("|")
    if kind == "invite":
        fields = rest.split("|", 7)
        if len(fields) == 8:
            secs, usecs, call_number, call_id, branch, variant, wait_ms, uri = fields
            user = uri.removeprefix(_URI_HEAD).removesuffix("@") if uri else ""
            return LoggedInvite(
                at=_seconds(secs, usecs),
                call_number=int(call_number),
                call_id=call_id,
                branch=branch,
                variant=variant or "-",
                wait_ms=int(wait_ms),
                number=unquote(user),
            )
    elif kind == "end":
        fields = rest.split("|")
        if len(fields) == 4:
            secs, usecs, call_number, how = fields
            return LoggedEnd(at=_seconds(secs, usecs), call_number=int(call_number), how=how)
    raise ValueError(f"SIPp log line {line!r}: expected an invite or end line")
