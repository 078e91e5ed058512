"""A trunk's codec order in the SDP offer of its calls.

pjsua's codec priorities are one list for the whole endpoint, but trunks of one worker may want
different codecs in different orders: each call's offer is rewritten for its own trunk."""

from __future__ import annotations

from collections.abc import Sequence

# Static RTP payload types (RFC 3551) that an offer may list without an rtpmap line.
STATIC_PAYLOADS = {"0": "PCMU", "3": "GSM", "8": "PCMA", "9": "G722"}
# Not codecs: DTMF events and comfort noise stay in the offer, after the codecs.
KEEP_ALWAYS = frozenset({"telephone-event", "CN"})


def offer_codecs(sdp: str, codecs: Sequence[str]) -> str:
    """`sdp` with the audio media line offering only `codecs`, in that order (each with every
    payload type the offer had for it), then DTMF events; unchanged if it offers none of them."""
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    audio = next((i for i, line in enumerate(lines) if line.startswith("m=audio ")), None)
    if audio is None:
        return sdp
    end = next((i for i in range(audio + 1, len(lines)) if lines[i].startswith("m=")), len(lines))
    m_fields = lines[audio].split(" ")
    payloads = m_fields[3:]
    names = dict(STATIC_PAYLOADS)
    for line in lines[audio + 1 : end]:
        if line.startswith("a=rtpmap:"):
            payload, _, encoding = line[len("a=rtpmap:") :].partition(" ")
            names[payload] = encoding.split("/")[0]
    wanted = {name.lower(): rank for rank, name in enumerate(codecs)}
    chosen = sorted(
        (p for p in payloads if names.get(p, "").lower() in wanted),
        key=lambda p: wanted[names[p].lower()],
    )
    if not chosen:
        return sdp
    kept = chosen + [p for p in payloads if names.get(p) in KEEP_ALWAYS]
    dropped = set(payloads) - set(kept)

    def about_dropped(line: str) -> bool:
        for prefix in ("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"):
            if line.startswith(prefix):
                return line[len(prefix) :].split(" ")[0] in dropped
        return False

    section = [line for line in lines[audio + 1 : end] if not about_dropped(line)]
    m_line = " ".join(m_fields[:3] + kept)
    return newline.join([*lines[:audio], m_line, *section, *lines[end:]])
