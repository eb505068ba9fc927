import dagster as dg

from dagster_project.defs.serving.assets import dbt_docs_site, serving_warehouse

defs = dg.Definitions(assets=[serving_warehouse, dbt_docs_site])
