import dagster as dg

from dagster_project.defs.models.ltv import predicted_ltv

defs = dg.Definitions(assets=[predicted_ltv])
