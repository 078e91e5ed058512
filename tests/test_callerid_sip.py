"""Local presence on the wire: a campaign with a caller-ID pool dials leads of several area
codes through the node, and SIPp as the carrier logs the INVITEs: each carries the number
chosen for its lead in From and P-Asserted-Identity, the one its attempt records."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from campaigns import callerids
from campaigns.models import CallAttempt, Campaign
from tests.node_harness import add_leads, running_node, start, working_agents, world, zone_in_hours
from tests.test_node_sip import wait_for

CAMPAIGN_CALLER_ID = "+16175550100"
# New York has two numbers, California one (for Los Angeles' 213 too), Chicago one with room
# for a single call today; Miami none.
POOL = (("+12125550101", None), ("+12125550102", None), ("+14155550101", None),
        ("+13125550101", 1))  # fmt: skip
LEADS = (
    "+12125550001",
    "+12125550002",
    "+12135550001",
    "+12135550002",
    "+13125550001",
    "+13125550002",
    "+13055550001",
)


def test_each_invite_carries_the_number_chosen_for_its_leads_area(tmp_path: Path) -> None:
    with world(tmp_path, agents=1, calls=len(LEADS), scenario="caller_id", carrier_logs=True) as w:
        w.trunk_toml += 'p_asserted_identity = "<sip:+12125550100@127.0.0.1>"\n'
        with w.session() as session:
            campaign = session.get_one(Campaign, w.campaign_id)
            campaign.caller_id = CAMPAIGN_CALLER_ID
            for number, cap in POOL:
                callerids.add(session, campaign, number, cap)
            session.commit()
        add_leads(w.engine, w.campaign_id, w.list_id, list(LEADS), zone_in_hours())
        start(w)
        with running_node(w), working_agents(w):

            def all_ended() -> bool:
                with w.session() as session:
                    ended = select(func.count()).where(CallAttempt.ended_at.is_not(None))
                    return session.scalar(ended) == len(LEADS) and len(w.carrier.logged()) == len(
                        LEADS
                    )

            assert wait_for(all_ended, 90), (w.carrier.logged(), w.carrier.errors())
        with w.session() as session:
            rows = session.execute(select(CallAttempt.phone_e164, CallAttempt.caller_id)).all()
            shown = dict(rows)
    # The carrier saw, for each number dialled, the attempt's caller ID in From and PAI.
    seen = {}
    for line in w.carrier.logged():
        request_uri, from_uri, asserted = line.split("|")
        seen[request_uri.removeprefix("INVITE sip:")] = (from_uri, asserted)
    assert seen == {
        lead: (f"sip:{shown[lead]}@127.0.0.1", f"sip:{shown[lead]}@127.0.0.1") for lead in LEADS
    }
    # New York's calls spread over its two numbers; Los Angeles gets California's; Chicago's
    # number has room for one call, the other shows the campaign's own, as Miami's does.
    assert {shown["+12125550001"], shown["+12125550002"]} == {"+12125550101", "+12125550102"}
    assert shown["+12135550001"] == shown["+12135550002"] == "+14155550101"
    assert sorted([shown["+13125550001"], shown["+13125550002"]]) == [
        "+13125550101",
        CAMPAIGN_CALLER_ID,
    ]
    assert shown["+13055550001"] == CAMPAIGN_CALLER_ID
