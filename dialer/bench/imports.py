"""`dialer bench import`: a generated lead file through the same path as `dialer leads import`."""

from __future__ import annotations

import array
import concurrent.futures
import csv
import multiprocessing
import random
import resource
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session

from campaigns import db, dnc
from campaigns.imports import import_leads
from campaigns.leads import PhoneAnalyzer
from campaigns.models import Campaign, LeadList

FIRST = ["Anna", "Bob", "Chen", "Dolores", "Émile", "Fatima", "Grzegorz", "Hiroshi", "Ines", "José"]
LAST = ["Smith", "García", "Nguyen", "O'Brien", "Müller", "Kowalski", "Okafor", "Rossi", "Ivanova"]
INVALID = ["555-01", "n/a", "(212) 555-010", "+1 000 000 0000", "12345678901234", "call me", ""]


def _us_area_codes() -> list[str]:
    analyzer = PhoneAnalyzer("US")
    codes = []
    for npa in range(201, 990):
        facts = analyzer.analyse(f"{npa}2345678")
        if not isinstance(facts, str) and facts.region == "US" and facts.phone_type != "toll_free":
            codes.append(str(npa))
    return codes


def _formatted(npa: str, exchange: int, line: int, style: int) -> str:
    return [
        f"({npa}) {exchange}-{line:04d}",
        f"+1 {npa}-{exchange}-{line:04d}",
        f"{npa}.{exchange}.{line:04d}",
        f"{npa}{exchange}{line:04d}",
        f"1-{npa}-{exchange}-{line:04d}",
    ][style]


def _packed(npa: str, exchange: int, line: int, style: int) -> int:
    return ((int(npa) * 1000 + exchange) * 10_000 + line) * 10 + style


def _unpacked(packed: int) -> str:
    rest, style = divmod(packed, 10)
    rest, line = divmod(rest, 10_000)
    npa, exchange = divmod(rest, 1000)
    return _formatted(str(npa), exchange, line, style)


def generate(path: Path, rows: int, seed: int = 7) -> list[str]:
    """Writes the CSV; returns the 2% of its numbers that go on the do-not-call list.

    Mix: 5% invalid, 3% duplicates of earlier rows, 2% on the DNC list, 1% UK numbers,
    five NANP formats."""
    rng = random.Random(seed)
    area_codes = _us_area_codes()
    # The numbers so far, for the duplicates, packed as integers: a million strings would make
    # the generator the biggest process of the bench.
    numbers = array.array("q")
    blocked: list[str] = []
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["First Name", "Last Name", "Phone", "Email", "Balance", "Account", "Notes"]
        )
        for i in range(rows):
            draw = rng.random()
            if draw < 0.05:
                phone = rng.choice(INVALID)
            elif draw < 0.08 and numbers:
                phone = _unpacked(rng.choice(numbers))
            elif draw < 0.09:
                phone = f"+44 20 7946 {rng.randint(0, 9999):04d}"
            else:
                number = (
                    rng.choice(area_codes),
                    rng.randint(200, 999),
                    rng.randint(0, 9999),
                    rng.randrange(5),
                )
                phone = _formatted(*number)
                numbers.append(_packed(*number))
                if draw > 0.98:
                    blocked.append(phone)
            first, last = rng.choice(FIRST), rng.choice(LAST)
            writer.writerow(
                [
                    first,
                    last,
                    phone,
                    f"{first.lower()}.{i}@example.com",
                    f"{rng.uniform(10, 5000):.2f}",
                    f"AC{i:08d}",
                    rng.choice(["", "vip", "spanish"]),
                ]
            )
    return blocked


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its finished children (the import's
    validating processes are joined before import_leads returns)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def run(rows: int, url: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="dialer-bench-") as folder:
        work = Path(folder)
        url = url or f"sqlite:///{work / 'bench.db'}"
        csv_path = work / "leads.csv"
        started = time.perf_counter()
        # Generated in another process, so this one's peak memory is the import's own.
        with concurrent.futures.ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            blocked = pool.submit(generate, csv_path, rows).result()
        generated = time.perf_counter() - started
        db.upgrade(url)
        engine = db.make_engine(url)
        with Session(engine) as session:
            campaign = Campaign(name=f"bench-{time.time_ns()}", kind="telemarketing")
            campaign.lists.append(LeadList(name="default"))
            session.add(campaign)
            session.commit()
            name = campaign.name
        dnc_file = work / "dnc.txt"
        dnc_file.write_text("\n".join(blocked), encoding="utf-8")
        dnc.import_file(engine, dnc_file)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        summary = import_leads(engine, csv_path, name)
        elapsed = time.perf_counter() - started
        cpu_used = [
            after - before for after, before in zip(_cpu_seconds(), cpu_before, strict=True)
        ]
        engine.dispose()
        return {
            "rows": summary.rows,
            "imported": summary.imported,
            "duplicates": summary.duplicates,
            "invalid": summary.invalid,
            "dnc": summary.dnc,
            "seconds": round(elapsed, 2),
            "rows_per_s": round(summary.rows / elapsed),
            # Wall-clock rates swing with the machine's load; CPU time is the steadier figure.
            "cpu_s": round(sum(cpu_used), 1),
            "cpu_s_importer": round(cpu_used[0], 1),
            "cpu_s_validators": round(cpu_used[1], 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_before_import_mb": round(rss_before / 1024, 1),
            # The largest child: the generator or the import's validating process.
            "peak_child_rss_mb": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
            ),
            "file_mb": round(csv_path.stat().st_size / 2**20, 1),
            "generate_s": round(generated, 1),
        }
