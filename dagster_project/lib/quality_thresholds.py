"""Render the data-quality mart's thresholds from the GE suite files into a dbt seed.

    python -m dagster_project.lib.quality_thresholds           # write dbt/seeds/quality_thresholds.csv
    python -m dagster_project.lib.quality_thresholds --check   # exit 1 when it is stale

marts.mart_data_quality (dbt) judges each check per business date against the same limits the
cross-source suites (expectations/cross_*.json) validate with, so a limit is typed once, in the
suite, and reaches dbt through this seed. One row per check:

- check_name, source: the mart's check and the source it is about ('' = one row per source).
- threshold, threshold_op: the day's value must be `threshold_op threshold` to pass ('' threshold
  for freshness: each source's SLA, from the contract through int_quality__source_freshness).
- row_min, row_max: the bounds one row's value must stay within, else it is an unexpected row.
- severity: the suite expectation's; a day that misses a critical threshold fails, others warn.
- suite: the suite the limit comes from ('' for quarantined rows, which no suite checks).

--check compares bytes.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from dagster_project.lib.contract_render import generator_main

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATOR = "python -m dagster_project.lib.quality_thresholds"
SEED = Path("dbt/seeds/quality_thresholds.csv")
SUITES = Path("expectations")
COLUMNS = ("check_name", "source", "threshold", "threshold_op", "row_min", "row_max", "severity", "suite")
TRACKED_SOURCE = "events"  # the tracking system is what coverage, lag and identity measure
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"


@dataclass(frozen=True)
class Check:
    """Where one of the mart's checks takes its limits: the expectation of `type_` on `column` in
    `suite`. `threshold`: the kwarg that is the day's limit, or a number (a count of unexpected rows
    must stay at or below it), or None (per source, from the contract). `row_bounds`: whether the
    expectation's min_value/max_value bound each row."""

    check_name: str
    source: str
    suite: str
    type_: str
    column: str
    threshold: str | float | None
    threshold_op: str
    row_bounds: bool = False


CHECKS = (
    Check("tracking_coverage", TRACKED_SOURCE, "cross_tracking_coverage", IN_SET, "has_payment_event",
          "mostly", ">="),
    Check("payment_event_lag_p50", TRACKED_SOURCE, "cross_tracking_coverage", BETWEEN, "lag_p50_min",
          "max_value", "<=", row_bounds=True),
    Check("payment_event_lag_p95", TRACKED_SOURCE, "cross_tracking_coverage", BETWEEN, "lag_p95_min",
          "max_value", "<=", row_bounds=True),
    Check("order_items_unknown_order", "order_items", "cross_order_items_orders", IN_SET, "order_exists",
          0, "<="),
    Check("pay_amount_mismatch", "orders", "cross_orders_pay_amount", BETWEEN, "pay_amount_diff",
          0, "<=", row_bounds=True),
    Check("identity_coverage", TRACKED_SOURCE, "cross_identity_coverage", BETWEEN, "is_attributed",
          "min_value", ">="),
    Check("freshness", "", "cross_freshness", IN_SET, "within_sla", None, "<="),
)
# Rows quarantined at ingest broke the row contract, which no suite re-checks: any warns, nothing fails
# (a contract-valid file is never refused and a quarantined row never blocks a run).
QUARANTINED_ROWS = {"check_name": "quarantined_rows", "source": "", "threshold": 0, "threshold_op": "<=",
                    "row_min": "", "row_max": "", "severity": "warning", "suite": ""}


def expectation(suite: dict, type_: str, column: str) -> dict:
    """The suite's expectation of this type on this column."""
    for e in suite.get("expectations", []):
        if e.get("type") == type_ and e.get("kwargs", {}).get("column") == column:
            return e
    raise LookupError(f"suite {suite.get('name')} has no {type_} on column {column}")


def _number(value) -> int | float | str:
    if value is None:
        return ""
    return int(value) if float(value).is_integer() else float(value)


def rows(root: Path | None = None) -> list[dict]:
    """The seed's rows: each check's limits read from its suite file."""
    root = root or REPO_ROOT
    out = []
    for check in CHECKS:
        path = root / SUITES / f"{check.suite}.json"
        e = expectation(json.loads(path.read_text()), check.type_, check.column)
        kwargs = e["kwargs"]
        threshold = kwargs[check.threshold] if isinstance(check.threshold, str) else check.threshold
        out.append({
            "check_name": check.check_name, "source": check.source, "threshold": _number(threshold),
            "threshold_op": check.threshold_op,
            "row_min": _number(kwargs.get("min_value")) if check.row_bounds else "",
            "row_max": _number(kwargs.get("max_value")) if check.row_bounds else "",
            "severity": e.get("severity", "critical"), "suite": check.suite})
    return [*out, QUARANTINED_ROWS]


def render(root: Path | None = None) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(root))
    return buf.getvalue()


def stale(root: Path | None = None) -> list[Path]:
    path = (root or REPO_ROOT) / SEED
    return [] if path.exists() and path.read_text() == render(root) else [path]


def main(argv: list[str] | None = None) -> int:
    return generator_main(argv, __doc__.split("\n\n")[0], GENERATOR,
                          lambda: {REPO_ROOT / SEED: render(REPO_ROOT)}, REPO_ROOT)


if __name__ == "__main__":
    sys.exit(main())
