"""Start, pause, stop: every status and action, against the table restated."""

from __future__ import annotations

import pytest

from campaigns.lifecycle import ACTIONS, LifecycleError, available, next_status
from campaigns.models import CAMPAIGN_STATUSES

ALLOWED = {
    ("draft", "start"): "active",
    ("active", "pause"): "paused",
    ("active", "stop"): "finished",
    ("paused", "start"): "active",
    ("paused", "stop"): "finished",
    ("finished", "start"): "active",
}


@pytest.mark.parametrize("status", CAMPAIGN_STATUSES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_status_and_action(status: str, action: str) -> None:
    if (status, action) in ALLOWED:
        assert next_status(status, action) == ALLOWED[status, action]
        assert action in available(status)
    else:
        with pytest.raises(LifecycleError, match=f"a {status} campaign cannot {action}"):
            next_status(status, action)
        assert action not in available(status)


def test_an_unknown_action_names_the_accepted_ones() -> None:
    with pytest.raises(LifecycleError, match=r"'resume' is not an action \(accepted: start"):
        next_status("paused", "resume")
