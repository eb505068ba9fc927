-- Service overview per ticket channel (and 'all'): share of tickets, first-response and resolution
-- hours (mean, p50, p90), resolution share (for bot: the bot resolution share 机器人解决率) and SLA
-- breach shares.
with

daily as (

    select * from {{ ref('mart_service_tickets') }}

),

tickets as (

    select * from {{ ref('stg_cs__tickets') }}

),

timed as (

    select
        channel,
        cast({{ dbt.datediff('created_at', 'first_response_at', 'second') }} as double) / 3600.0
            as first_response_hours,
        cast({{ dbt.datediff('created_at', 'resolved_at', 'second') }} as double) / 3600.0 as resolution_hours
    from tickets

    union all

    select
        'all' as channel,
        cast({{ dbt.datediff('created_at', 'first_response_at', 'second') }} as double) / 3600.0
            as first_response_hours,
        cast({{ dbt.datediff('created_at', 'resolved_at', 'second') }} as double) / 3600.0 as resolution_hours
    from tickets

),

percentiles as (

    select
        channel,
        {{ percentile_cont('first_response_hours', 0.5) }} as p50_first_response_hours,
        {{ percentile_cont('first_response_hours', 0.9) }} as p90_first_response_hours,
        {{ percentile_cont('resolution_hours', 0.5) }} as p50_resolution_hours
    from timed
    group by channel

),

sums as (

    select
        channel,
        sum(tickets) as tickets,
        sum(responded_tickets) as responded_tickets,
        sum(resolved_tickets) as resolved_tickets,
        sum(first_response_hours_sum) as first_response_hours_sum,
        sum(resolution_hours_sum) as resolution_hours_sum,
        sum(first_response_breaches) as first_response_breaches,
        sum(resolution_breaches) as resolution_breaches
    from daily
    group by channel

    union all

    select
        'all' as channel,
        sum(tickets) as tickets,
        sum(responded_tickets) as responded_tickets,
        sum(resolved_tickets) as resolved_tickets,
        sum(first_response_hours_sum) as first_response_hours_sum,
        sum(resolution_hours_sum) as resolution_hours_sum,
        sum(first_response_breaches) as first_response_breaches,
        sum(resolution_breaches) as resolution_breaches
    from daily

),

final as (

    select
        sums.channel,
        cast(sums.tickets as integer) as tickets,
        {{ safe_share('sums.tickets', 'sum(case when sums.channel = \'all\' then sums.tickets end) over ()') }}
            as share_of_tickets,
        cast(sums.resolved_tickets as integer) as resolved_tickets,
        {{ safe_share('sums.resolved_tickets', 'sums.tickets') }} as resolution_share,
        sums.first_response_hours_sum / nullif(sums.responded_tickets, 0) as avg_first_response_hours,
        percentiles.p50_first_response_hours,
        percentiles.p90_first_response_hours,
        sums.resolution_hours_sum / nullif(sums.resolved_tickets, 0) as avg_resolution_hours,
        percentiles.p50_resolution_hours,
        {{ safe_share('sums.first_response_breaches', 'sums.tickets') }} as first_response_breach_share,
        {{ safe_share('sums.resolution_breaches', 'sums.tickets') }} as resolution_breach_share
    from sums
    left join percentiles
        on sums.channel = percentiles.channel

)

select * from final
