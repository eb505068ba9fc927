-- Period repurchase rate and repeat revenue share per period and acquisition channel (the customer's
-- first_channel, not the channel of the period's orders); all channels together: mart_repurchase_period.
with

buyer_periods as (

    select * from {{ ref('int_buyer_periods_aggregated') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

periods_aggregated as (

    select
        period_grain,
        period_start,
        first_channel,
        period_end,
        count(*) as buyers,
        sum(case when purchase_days >= 2 then 1 else 0 end) as repeat_buyers,
        sum(net_revenue) as net_revenue,
        sum(repeat_net_revenue) as repeat_net_revenue
    from buyer_periods
    group by
        period_grain,
        period_start,
        first_channel,
        period_end

),

final as (

    select
        periods_aggregated.period_grain,
        periods_aggregated.period_start,
        periods_aggregated.first_channel,
        cast(periods_aggregated.buyers as integer) as buyers,
        cast(periods_aggregated.repeat_buyers as integer) as repeat_buyers,
        {{ safe_share('periods_aggregated.repeat_buyers', 'periods_aggregated.buyers') }}
            as period_repurchase_rate,
        {{ safe_share('periods_aggregated.repeat_net_revenue', 'periods_aggregated.net_revenue') }}
            as repeat_revenue_share,
        cast(periods_aggregated.net_revenue as decimal(18, 2)) as net_revenue,
        cast(periods_aggregated.repeat_net_revenue as decimal(18, 2)) as repeat_net_revenue,
        periods_aggregated.period_end,
        -- a period is whole only when the loaded history covers it from its first day to its last:
        -- a rate of buyers with >= 2 purchase days falls with the days observed
        periods_aggregated.period_start >= data_end.data_start_date
            and periods_aggregated.period_end <= data_end.data_end_date as is_complete,
        data_end.data_end_date
    from periods_aggregated
    cross join data_end

)

select * from final
