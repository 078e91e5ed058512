"""`dialer serve --demo`: a campaign with sample leads, so a newcomer has something to look at."""

from __future__ import annotations

import csv
import random
import tempfile
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from campaigns.dispositions import install_catalogue
from campaigns.imports import import_leads
from campaigns.models import Campaign, LeadList

DEMO_CAMPAIGN = "Demo telemarketing"
AREA_CODES = (212, 305, 415, 512, 718)


def seed_demo(engine: Engine, leads: int = 200) -> str:
    with Session(engine) as session:
        if session.scalar(select(Campaign.id).where(Campaign.name == DEMO_CAMPAIGN)):
            return f"demo campaign {DEMO_CAMPAIGN!r} is already there"
        campaign = Campaign(name=DEMO_CAMPAIGN, kind="telemarketing", dial_mode="predictive")
        campaign.lists.append(LeadList(name="default"))
        session.add(campaign)
        session.flush()
        install_catalogue(session, campaign)
        session.commit()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo-leads.csv"
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["first_name", "last_name", "phone", "consent"])
            for i in range(leads):
                # 555-01XX numbers are reserved for fiction; the rest follow US patterns.
                writer.writerow(
                    [
                        rng.choice(["Ana", "Ben", "Chloe", "Dev"]),
                        f"Lead{i}",
                        f"({rng.choice(AREA_CODES)}) 555-{rng.randint(100, 9999):04d}",
                        "yes",
                    ]
                )
        summary = import_leads(engine, path, DEMO_CAMPAIGN, list_name="demo")
    return f"demo campaign {DEMO_CAMPAIGN!r}: {summary.imported} leads imported"
