-- One row per buyer (customer with a purchase day up to the data end date): cohort, acquisition
-- channel, purchase days so far and whether the customer repurchased within 30 days.
with

purchase_days as (

    select * from {{ ref('int_purchase_days_sequenced') }}

),

summarized as (

    select
        customer_key,
        first_purchase_date,
        cohort_month,
        cohort_week,
        first_channel,
        count(*) as purchase_days,
        min(case when purchase_day_seq = 2 then purchase_date end) as second_purchase_date,
        max(purchase_date) as last_purchase_date
    from purchase_days
    group by
        customer_key,
        first_purchase_date,
        cohort_month,
        cohort_week,
        first_channel

),

final as (

    select
        customer_key,
        first_purchase_date,
        cohort_month,
        cohort_week,
        first_channel,
        cast(purchase_days as integer) as purchase_days,
        second_purchase_date,
        last_purchase_date,
        cast(
            {{ dbt.datediff('first_purchase_date', 'second_purchase_date', 'day') }} as integer
        ) as days_to_second_purchase,
        -- another purchase day d with first_day < d <= first_day + 30: day 30 counts, day 31 does not
        coalesce(
            second_purchase_date <= cast({{ dbt.dateadd('day', 30, 'first_purchase_date') }} as date),
            false
        ) as is_repurchased_30d
    from summarized

)

select * from final
