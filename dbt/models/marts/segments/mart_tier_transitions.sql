-- Lifecycle tier moves per calendar month (试用 → 复购 → 进阶): each customer's tier at the month's end
-- against their tier at the end of the month before (mart_customer_segments' rule, never recomputed).
-- A customer without a purchase day before the month comes from 'none' (the month's first purchases,
-- 试用). Tiers count purchases to date, so a customer never moves down. Only months whose last day is
-- a month-end as-of date (ended by the data end date) are listed.
with

segments as (

    select * from {{ ref('mart_customer_segments') }}

),

month_end_tiers as (

    select
        customer_key,
        as_of_date,
        lifecycle_tier
    from segments
    where as_of_date = {{ period_end('month', period_start('month', 'as_of_date')) }}

),

tiers_paired as (

    select
        month_end_tiers.as_of_date as month_end,
        {{ period_start('month', 'month_end_tiers.as_of_date') }} as month_start,
        coalesce(previous_tiers.lifecycle_tier, 'none') as from_tier,
        month_end_tiers.lifecycle_tier as to_tier
    from month_end_tiers
    left join month_end_tiers as previous_tiers
        on month_end_tiers.customer_key = previous_tiers.customer_key
        and previous_tiers.as_of_date
        = cast({{ dbt.dateadd('day', -1, period_start('month', 'month_end_tiers.as_of_date')) }} as date)

),

tiers_ranked as (

    select
        month_start,
        month_end,
        from_tier,
        to_tier,
        case from_tier when 'novice' then 1 when 'advanced' then 2 when 'expert' then 3 else 0 end as from_rank,
        case to_tier when 'novice' then 1 when 'advanced' then 2 when 'expert' then 3 else 0 end as to_rank
    from tiers_paired

),

final as (

    select
        month_start,
        month_end,
        from_tier,
        case from_tier
            when 'none' then '未购买' when 'novice' then '新手' when 'advanced' then '进阶' else '专业'
        end as from_tier_zh,
        to_tier,
        case to_tier when 'novice' then '新手' when 'advanced' then '进阶' else '专业' end as to_tier_zh,
        to_rank > from_rank as is_upgrade,
        cast(count(*) as integer) as customers
    from tiers_ranked
    group by
        month_start,
        month_end,
        from_tier,
        to_tier,
        from_rank,
        to_rank

)

select * from final
