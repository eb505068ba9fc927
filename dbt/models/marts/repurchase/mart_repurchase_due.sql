-- Repurchase-due list (复购提醒): per customer and category_l1 bought, the day a next purchase in the
-- category is due (last purchase day in it + the customer's interval) and whether that day is in the
-- reminder window around the data end date (is_due_now). The interval is the customer's own mean gap in
-- the category when they bought it on two days or more, else the category's median gap
-- (mart_category_interval.p50_days); a category without a gap yet has no due date.
with

category_days as (

    select * from {{ ref('int_category_purchase_days') }}

),

category_intervals as (

    select * from {{ ref('mart_category_interval') }}

),

segments as (

    select * from {{ ref('mart_customer_segments') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

category_days_summarized as (

    select
        customer_key,
        category_l1,
        count(*) as category_purchase_days,
        min(purchase_date) as first_category_date,
        max(purchase_date) as last_category_date
    from category_days
    group by
        customer_key,
        category_l1

),

intervals_chosen as (

    select
        category_days_summarized.*,
        case
            when category_days_summarized.category_purchase_days >= 2
                then cast({{ dbt.datediff('category_days_summarized.first_category_date',
                    'category_days_summarized.last_category_date', 'day') }} as double)
                / (category_days_summarized.category_purchase_days - 1)
            else category_intervals.p50_days
        end as interval_days,
        case when category_days_summarized.category_purchase_days >= 2 then 'customer' else 'category' end
            as interval_source
    from category_days_summarized
    left join category_intervals
        on category_days_summarized.category_l1 = category_intervals.category_l1

),

due_dates_computed as (

    select
        intervals_chosen.*,
        cast(
            {{ dbt.dateadd('day', 'cast(round(intervals_chosen.interval_days, 0) as integer)',
                'intervals_chosen.last_category_date') }} as date
        ) as due_date,
        data_end.data_end_date
    from intervals_chosen
    cross join data_end
    where intervals_chosen.interval_days is not null

),

final as (

    select
        due_dates_computed.customer_key,
        due_dates_computed.category_l1,
        cast(due_dates_computed.category_purchase_days as integer) as category_purchase_days,
        due_dates_computed.last_category_date,
        due_dates_computed.interval_days,
        due_dates_computed.interval_source,
        due_dates_computed.due_date,
        cast({{ dbt.datediff('due_dates_computed.data_end_date', 'due_dates_computed.due_date', 'day') }} as integer)
            as days_until_due,
        -- the reminder window: due within the next 7 days, or overdue by at most 14 (longer overdue is a
        -- lapse for win-back, not a reminder)
        due_dates_computed.due_date
        between cast({{ dbt.dateadd('day', -14, 'due_dates_computed.data_end_date') }} as date)
        and cast({{ dbt.dateadd('day', 7, 'due_dates_computed.data_end_date') }} as date) as is_due_now,
        segments.segment,
        segments.segment_zh,
        due_dates_computed.data_end_date
    from due_dates_computed
    left join segments
        on due_dates_computed.customer_key = segments.customer_key
        and due_dates_computed.data_end_date = segments.as_of_date

)

select * from final
