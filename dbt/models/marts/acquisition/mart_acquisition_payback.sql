-- CAC against LTV per first channel (plus 'all'): for m = 1..12 months, LTV_m = net revenue per
-- customer of days 0..30m after the first purchase day (the LTV fact of mart_ltv_cohort, at month
-- horizons), pooled over the cohorts observed through day 30m (cohort month's last day + 30m <=
-- data end date), against the channel's CAC over the window (mart_acquisition_cost). payback_months,
-- the first m whose LTV reaches the CAC (回本月数), and roi_90d, LTV at 90 days over CAC, are the
-- channel's and repeat on each of its rows with spend_share, the channel's part of all spend.
{%- set max_months = 12 %}

with

purchase_days as (

    select * from {{ ref('int_purchase_days_sequenced') }}

),

acquisition_cost as (

    select * from {{ ref('mart_acquisition_cost') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

horizons as (

    {%- for m in range(1, max_months + 1) %}
    select {{ m }} as months_since_first{% if not loop.last %} union all{% endif %}
    {%- endfor %}

),

customer_values as (

    select
        purchase_days.customer_key,
        purchase_days.first_channel,
        horizons.months_since_first,
        sum(
            case when purchase_days.days_since_first_purchase <= 30 * horizons.months_since_first
                then purchase_days.net_revenue else 0 end
        ) as net_revenue
    from purchase_days
    cross join horizons
    cross join data_end
    where
        cast(
            {{ dbt.dateadd(
                'day',
                '30 * horizons.months_since_first',
                period_end('month', 'purchase_days.cohort_month')
            ) }} as date
        ) <= data_end.data_end_date
    group by
        purchase_days.customer_key,
        purchase_days.first_channel,
        horizons.months_since_first

),

channels_and_all as (

    select first_channel, months_since_first, net_revenue from customer_values
    union all
    select 'all', months_since_first, net_revenue from customer_values

),

curves_aggregated as (

    select
        first_channel,
        months_since_first,
        count(*) as customers,
        sum(net_revenue) as net_revenue
    from channels_and_all
    group by
        first_channel,
        months_since_first

),

window_cost as (

    select
        channel,
        cac,
        spend_share
    from acquisition_cost
    where period_type = 'window'

),

curves_against_cac as (

    select
        curves_aggregated.first_channel,
        curves_aggregated.months_since_first,
        curves_aggregated.customers,
        curves_aggregated.net_revenue,
        {{ safe_share('curves_aggregated.net_revenue', 'curves_aggregated.customers') }} as ltv_net,
        window_cost.cac,
        window_cost.spend_share
    from curves_aggregated
    left join window_cost
        on curves_aggregated.first_channel = window_cost.channel

),

channel_payback as (

    select
        first_channel,
        min(case when ltv_net >= cac then months_since_first end) as payback_months,
        max(case when months_since_first = 3 then {{ safe_share('ltv_net', 'cac') }} end) as roi_90d
    from curves_against_cac
    group by first_channel

),

final as (

    select
        curves_against_cac.first_channel,
        cast(curves_against_cac.months_since_first as integer) as months_since_first,
        cast(curves_against_cac.customers as integer) as customers,
        cast(curves_against_cac.net_revenue as decimal(18, 2)) as net_revenue,
        curves_against_cac.ltv_net,
        curves_against_cac.cac,
        {{ safe_share('curves_against_cac.ltv_net', 'curves_against_cac.cac') }} as ltv_to_cac,
        coalesce(curves_against_cac.ltv_net >= curves_against_cac.cac, false) as is_paid_back,
        cast(channel_payback.payback_months as integer) as payback_months,
        channel_payback.roi_90d,
        curves_against_cac.spend_share,
        data_end.data_end_date
    from curves_against_cac
    inner join channel_payback
        on curves_against_cac.first_channel = channel_payback.first_channel
    cross join data_end

)

select * from final
