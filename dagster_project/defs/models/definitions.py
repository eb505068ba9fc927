import dagster as dg

from dagster_project.defs.models.ltv import ltv_settings, predicted_ltv

defs = dg.Definitions(assets=[predicted_ltv], resources={"ltv": ltv_settings()})
