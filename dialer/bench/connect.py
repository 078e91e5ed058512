"""`dialer bench connect`: how long a human answer waits for its agent, through real SIP.

N customer calls go to a SIPp carrier that answers and echoes; a tap that declares every answer
human at its first frame takes AMD's listening time out of the figure, so what is measured is
the connector's work alone: verdict event, agent INVITE in the customer's worker (`near=`),
auto-answer by a SIPp agent phone, bridge. The connect delay is read on the worker's monotonic
clock, from the tap's decision to the bridge. Figures, never asserts.
"""

from __future__ import annotations


class DeclareHuman:
    """A frame tap that says "human" on the first frame after the answer."""

    def feed(self, frame: bytes) -> str:
        return "human"
