"""Planted incidents: known faults with known dates, so the shipped alert rules can be tested.

- retention_dip, D1 retention (growth.d1_retention_drop): users registered on 7 consecutive normal
  days rarely come back the next day.
- payment_failure_spike, payment success after submit on platform mini_program
  (operations.payment_success_drop): on the last 3 normal days before the stopped source, most
  checkouts of that platform submit a payment that fails.
- source_stopped, rows landed of cs_tickets (data.service_tickets_stopped): no cs_tickets file for
  the last 3 days.

Anomaly incidents sit on normal days (no promotion or public holiday of dim_date) with the history
the anomaly rules need before them (28 normal days in the 8 weeks before, as the rules' defaults),
and the day after each ends is normal too, so its resolution is observable. A world too short for
one records it as skipped with the reason. cs_tickets is the stopped source because no other
source's truth reads it: its missing days only shrink the tickets the warehouse knows.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

HOLIDAYS_CSV = Path(__file__).resolve().parents[3] / "dbt" / "seeds" / "cn_public_holidays.csv"

HISTORY_WEEKS = 8         # alerts.rules.AnomalyKind.window_weeks default
MIN_HISTORY_DAYS = 28     # alerts.rules.AnomalyKind.min_history_days default
DIP_DAYS = 7
DIP_VISIT_FACTOR = 0.1    # day-1 visit probability of the dip's new users
SPIKE_DAYS = 3
SPIKE_PLATFORM = "mini_program"
SPIKE_SUCCESS_RATE = 0.15  # payment success after submit on the spike's days (normally ~0.65)
STOPPED_SOURCE = "cs_tickets"
STOPPED_DAYS = 3
STOPPED_MIN_DAYS = 14     # a source must have delivered for a while before it can stop


def special_days(start: date, days: int) -> set[date]:
    """Promotion days and public holidays as dim_date defines them (dbt/models/marts/core/dim_date.sql):
    618 (June 1-18), 11.11 (November 1-11), 12.12, 3.8, and every public holiday of the seed."""
    with HOLIDAYS_CSV.open(encoding="utf-8") as f:
        holidays = {date.fromisoformat(r["holiday_date"]) for r in csv.DictReader(f)}
    out = set()
    for i in range(days):
        d = start + timedelta(days=i)
        if (d in holidays or (d.month == 6 and d.day <= 18) or (d.month == 11 and d.day <= 11)
                or (d.month, d.day) in ((12, 12), (3, 8))):
            out.add(d)
    return out


def _anomaly_window(start: date, days: int, special: set[date], length: int, earliest: int,
                    last_usable: int, *, last: bool = False) -> int | None:
    """First (last: latest) day index >= earliest of `length` normal days followed by a normal day
    (<= last_usable), with MIN_HISTORY_DAYS normal days in the HISTORY_WEEKS before it."""
    normal = [start + timedelta(days=i) not in special for i in range(days)]
    starts = range(max(earliest, MIN_HISTORY_DAYS), last_usable - length + 1)
    for s in reversed(starts) if last else starts:
        history = sum(normal[max(0, s - 7 * HISTORY_WEEKS):s])
        if history >= MIN_HISTORY_DAYS and all(normal[s:s + length + 1]):
            return s
    return None


def plan_incidents(start: date, days: int, enabled: bool = True) -> dict:
    """Day indexes of each incident (None when skipped) and the truth.json entries describing them;
    with enabled False (ecomwh generate --no-incidents) every one is skipped, with that reason."""
    special = special_days(start, days)
    stop_first = days - STOPPED_DAYS if days >= STOPPED_MIN_DAYS + STOPPED_DAYS and enabled else None
    data_end = (stop_first if stop_first is not None else days) - 1
    # D1 of the resolving day needs the day after it
    dip = _anomaly_window(start, days, special, DIP_DAYS, 0, data_end - 1) if enabled else None
    # as late as possible: a young shop has few payments a day per platform, and a rate of few is noisy.
    # Its resolving day is the stop's eve, STOPPED_DAYS (3) before the end: payment_success_drop's
    # settle_days (3, late callbacks) leave exactly that day evaluated
    spike = _anomaly_window(start, days, special, SPIKE_DAYS, dip + DIP_DAYS + 1 if dip is not None else 0,
                            data_end, last=True) if enabled else None

    def entry(kind, metric, rule, first, length, reason, **extra):
        e = {"kind": kind, "metric": metric, "rule_id": rule, **extra}
        if first is None:
            return {**e, "skipped": True, "reason": reason}
        return {**e, "skipped": False, "first_date": (start + timedelta(days=first)).isoformat(),
                "last_date": (start + timedelta(days=first + length - 1)).isoformat()}

    too_short = (f"{days} days hold no {{n}} normal days (no promotion or holiday) after "
                 f"{MIN_HISTORY_DAYS} normal days of history" if enabled else "generated with --no-incidents")
    incidents = [
        entry("retention_dip", "d1_retention_rate", "growth.d1_retention_drop", dip, DIP_DAYS,
              too_short.format(n=DIP_DAYS + 1), channel=None, source=None,
              planted={"day1_visit_factor": DIP_VISIT_FACTOR}),
        entry("payment_failure_spike", "payment_success_rate", "operations.payment_success_drop", spike,
              SPIKE_DAYS,
              too_short.format(n=SPIKE_DAYS + 1) + (" and the retention dip" if enabled else ""),
              channel=SPIKE_PLATFORM, source=None, dims=f"platform={SPIKE_PLATFORM}",
              planted={"success_rate": SPIKE_SUCCESS_RATE}),
        entry("source_stopped", "rows_landed", "data.service_tickets_stopped", stop_first, STOPPED_DAYS,
              f"{days} days: a source stops only after {STOPPED_MIN_DAYS} days of deliveries" if enabled
              else "generated with --no-incidents",
              channel=None, source=STOPPED_SOURCE, dims=f"source={STOPPED_SOURCE}"),
    ]
    return {"dip": dip, "spike": spike, "stop_first": stop_first, "truth": incidents}
