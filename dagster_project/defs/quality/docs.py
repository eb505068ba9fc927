"""Great Expectations Data Docs: rendered once per run, after it, whatever its outcome.

Every validation of a run queues its result (QualityRunner.validate); `render_run_docs` renders the
queue in one GE call. It is the only place Data Docs are rendered: the run-status sensors below call
it after each run the daemon (`ecomwh serve`) launches, and `ecomwh run`, which runs in process with
no daemon, calls it when its run ends. A failed run renders its evidence too.
"""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.quality.checks import QualityResource


def render_run_docs(quality: QualityResource, warn) -> int:
    """Render every queued validation result; returns how many. Data Docs are a view of results
    already stored: failing to render them fails nothing, the next run renders the queue again."""
    try:
        return quality.runner.render_docs()
    except Exception as exc:  # noqa: BLE001
        warn(f"GE Data Docs not rendered: {exc!r}; the results are stored, the next run renders them")
        return 0


def _render(context: dg.RunStatusSensorContext, quality: QualityResource) -> None:
    if n := render_run_docs(quality, context.log.warning):
        context.log.info(f"run {context.dagster_run.run_id}: GE Data Docs of {n} validations, "
                         f"{quality.runner.docs_index}")


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, name="ge_data_docs_after_success",
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      description="Renders the GE Data Docs of the validations a finished run queued.")
def ge_data_docs_after_success(context: dg.RunStatusSensorContext, quality: QualityResource):
    _render(context, quality)


@dg.run_failure_sensor(name="ge_data_docs_after_failure", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Renders the GE Data Docs of the validations a failed run queued: "
                                   "the evidence of a critical failure.")
def ge_data_docs_after_failure(context: dg.RunFailureSensorContext, quality: QualityResource):
    _render(context, quality)
