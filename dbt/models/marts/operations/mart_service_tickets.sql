-- Customer-service tickets per creation date, channel (bot, human) and category: first-response and
-- resolution hours as sums and counts, and SLA breaches (var ops_sla_first_response_hours,
-- ops_sla_resolution_hours; an unanswered ticket breaches once it is older than the SLA at the latest
-- ticket timestamp in the data).
with

tickets as (

    select * from {{ ref('stg_cs__tickets') }}

),

observed as (

    select
        max(
            case
                when resolved_at is not null then resolved_at
                when first_response_at is not null then first_response_at
                else created_at
            end
        ) as observed_until
    from tickets

),

timed as (

    select
        tickets.ticket_id,
        tickets.created_date,
        tickets.channel,
        coalesce(tickets.category, 'unknown') as category,
        tickets.csat,
        tickets.resolved_at is not null as is_resolved,
        cast({{ dbt.datediff('tickets.created_at', 'tickets.first_response_at', 'second') }} as double) / 3600.0
            as first_response_hours,
        cast({{ dbt.datediff('tickets.created_at', 'tickets.resolved_at', 'second') }} as double) / 3600.0
            as resolution_hours,
        cast({{ dbt.datediff('tickets.created_at', 'observed.observed_until', 'second') }} as double) / 3600.0
            as age_hours
    from tickets
    cross join observed

),

flagged as (

    select
        *,
        coalesce(
            first_response_hours > {{ var('ops_sla_first_response_hours') }},
            age_hours > {{ var('ops_sla_first_response_hours') }}
        ) as is_first_response_breach,
        coalesce(
            resolution_hours > {{ var('ops_sla_resolution_hours') }},
            age_hours > {{ var('ops_sla_resolution_hours') }}
        ) as is_resolution_breach
    from timed

),

final as (

    select
        created_date,
        channel,
        category,
        cast(count(*) as integer) as tickets,
        cast(count(first_response_hours) as integer) as responded_tickets,
        cast(sum(case when is_resolved then 1 else 0 end) as integer) as resolved_tickets,
        sum(first_response_hours) as first_response_hours_sum,
        avg(first_response_hours) as avg_first_response_hours,
        sum(resolution_hours) as resolution_hours_sum,
        avg(resolution_hours) as avg_resolution_hours,
        cast(sum(case when is_first_response_breach then 1 else 0 end) as integer) as first_response_breaches,
        cast(sum(case when is_resolution_breach then 1 else 0 end) as integer) as resolution_breaches,
        cast(count(csat) as integer) as csat_responses,
        avg(cast(csat as double)) as avg_csat
    from flagged
    group by created_date, channel, category

)

select * from final
