"""marts.mart_metric_alerts: every alert rule (alerts/*.yml) evaluated after the marts, and the
fire / resolve messages that follow from it (dagster_project/lib/alerts/)."""

from datetime import UTC, datetime

import dagster as dg

from dagster_project.defs.dbt.assets import dbt_models
from dagster_project.defs.dbt.project import dbt_project
from dagster_project.defs.models.ltv import predicted_ltv
from dagster_project.defs.resources import WRITER_POOL, WarehouseResource
from dagster_project.lib.dbt_outputs import load_manifest, written_by
from dagster_project.lib.alerts.engine import current_states
from dagster_project.lib.alerts.evaluate import evaluate_all, write_alerts
from dagster_project.defs.alerts.resources import AlertsResource
from dagster_project.lib.alerts.notify import deliver
from dagster_project.lib.alerts.rules import RULES_DIR, collect_rules

# its key from the dbt source that declares the table (meta.ew.written_by)
MART_METRIC_ALERTS = dg.AssetKey(list(written_by("metric_alerts", load_manifest(dbt_project.manifest_path))
                                      ["alerts"].key_path))
# A rule may read any mart, whichever integration builds it.
UPSTREAM = sorted({k for a in (dbt_models, predicted_ltv) for k in a.keys
                   if k.path[0] == "marts"})


@dg.asset(
    key=MART_METRIC_ALERTS,
    deps=UPSTREAM,
    group_name="marts",
    kinds={"python", "duckdb"},
    pool=WRITER_POOL,
    check_specs=[dg.AssetCheckSpec("rule_files_valid", asset=MART_METRIC_ALERTS)],
    description="Every alert rule of alerts/*.yml evaluated on every date of its metric: value, baseline, "
                "threshold, state ok / firing / resolved / not_evaluated and since. Then one message per "
                "alert that started firing or resolved (EW_ALERT_URLS), never a repeat.",
)
def mart_metric_alerts(context: dg.AssetExecutionContext, warehouse: WarehouseResource, alerts: AlertsResource):
    # a broken rule file is reported by the check, not by failing the asset: it must not block the
    # published copy, nor silence the other teams' rules
    rules, problems = collect_rules(RULES_DIR)
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse.connect() as con:
        frame, unevaluated = evaluate_all(con, rules, now)
        write_alerts(con, frame)
    problems += unevaluated
    for p in problems:
        context.log.error(p)
    current = current_states(frame)
    deliveries = deliver(current, alerts.settings(), alerts.store(), now,
                         {r.rule_id: r for r in rules}, log=context.log.warning)
    for d in deliveries:
        context.log.info(f"alert {d.event} {d.rule_id} [{d.dims}] since {d.since}: {d.status}")
    firing = current.filter(current["state"] == "firing")
    yield dg.MaterializeResult(metadata={
        "rules": len(rules),
        "rows": frame.height,
        "firing_now": firing.height,
        "firing": dg.MetadataValue.json([
            {"rule": r["rule_id"], "dims": r["dims"], "since": str(r["since"]), "value": r["value"]}
            for r in firing.iter_rows(named=True)]),
        "messages": dg.MetadataValue.json([
            {"event": d.event, "rule": d.rule_id, "dims": d.dims, "since": d.since, "status": d.status}
            for d in deliveries]),
    })
    yield dg.AssetCheckResult(check_name="rule_files_valid", passed=not problems,
                              severity=dg.AssetCheckSeverity.ERROR,
                              metadata={"problems": dg.MetadataValue.json(problems)})
