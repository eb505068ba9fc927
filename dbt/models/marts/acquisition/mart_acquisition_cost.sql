-- Customer acquisition cost (获客成本) per calendar month and sales channel, and per channel over the
-- whole window (period_type 'window', spend_month null), each with channel 'all' beside the channels:
-- paid spend (ad_spend) over the new customers the channel brought in that period, a new customer
-- being the first-purchase fact of the cohort marts (int_buyers_summarized: first_purchase_date and
-- first_channel). A channel without spend rows has no CAC (null, not 0): its cost is unknown.
with

spend as (

    select * from {{ ref('stg_marketing__ad_spend') }}

),

buyers as (

    select * from {{ ref('int_buyers_summarized') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

spend_rows as (

    select
        cast({{ dbt.date_trunc('month', 'spend.spend_date') }} as date) as spend_month,
        spend.channel,
        spend.spend_amount,
        spend.impressions,
        spend.clicks
    from spend
    cross join data_end
    where spend.spend_date <= data_end.data_end_date

),

spend_in_periods as (

    select 'month' as period_type, spend_month, channel, spend_amount, impressions, clicks from spend_rows
    union all
    select 'month', spend_month, 'all', spend_amount, impressions, clicks from spend_rows
    union all
    select 'window', null, channel, spend_amount, impressions, clicks from spend_rows
    union all
    select 'window', null, 'all', spend_amount, impressions, clicks from spend_rows

),

spend_aggregated as (

    select
        period_type,
        spend_month,
        channel,
        sum(spend_amount) as spend_amount,
        sum(impressions) as impressions,
        sum(clicks) as clicks
    from spend_in_periods
    group by
        period_type,
        spend_month,
        channel

),

new_in_periods as (

    select 'month' as period_type, cohort_month as spend_month, first_channel as channel from buyers
    union all
    select 'month', cohort_month, 'all' from buyers
    union all
    select 'window', null, first_channel from buyers
    union all
    select 'window', null, 'all' from buyers

),

new_aggregated as (

    select
        period_type,
        spend_month,
        channel,
        count(*) as new_customers
    from new_in_periods
    group by
        period_type,
        spend_month,
        channel

),

joined as (

    select
        coalesce(spend_aggregated.period_type, new_aggregated.period_type) as period_type,
        coalesce(spend_aggregated.spend_month, new_aggregated.spend_month) as spend_month,
        coalesce(spend_aggregated.channel, new_aggregated.channel) as channel,
        spend_aggregated.spend_amount,
        spend_aggregated.impressions,
        spend_aggregated.clicks,
        coalesce(new_aggregated.new_customers, 0) as new_customers
    from spend_aggregated
    full outer join new_aggregated
        on spend_aggregated.period_type = new_aggregated.period_type
        and (
            spend_aggregated.spend_month = new_aggregated.spend_month
            or (spend_aggregated.spend_month is null and new_aggregated.spend_month is null)
        )
        and spend_aggregated.channel = new_aggregated.channel

),

shares_computed as (

    select
        joined.*,
        sum(case when joined.channel = 'all' then joined.spend_amount end) over (
            partition by joined.period_type, joined.spend_month
        ) as period_spend_amount
    from joined

),

final as (

    select
        shares_computed.period_type,
        shares_computed.spend_month,
        shares_computed.channel,
        cast(coalesce(shares_computed.spend_amount, 0) as decimal(18, 2)) as spend_amount,
        cast(coalesce(shares_computed.impressions, 0) as bigint) as impressions,
        cast(coalesce(shares_computed.clicks, 0) as bigint) as clicks,
        cast(shares_computed.new_customers as integer) as new_customers,
        case
            when shares_computed.spend_amount is not null
                then {{ safe_share('shares_computed.spend_amount', 'shares_computed.new_customers') }}
        end as cac,
        {{ safe_share('coalesce(shares_computed.spend_amount, 0)', 'shares_computed.period_spend_amount') }}
            as spend_share,
        data_end.data_end_date
    from shares_computed
    cross join data_end

)

select * from final
