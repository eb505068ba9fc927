-- The dates customer segments are computed as of: every month end in the data up to the data end
-- date, plus the data end date itself (int_data_end_dates_resolved, the one data end date of every
-- mart), so the current month's lists are one filter away.
with

calendar as (

    select * from {{ ref('dim_date') }}

),

end_date as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

month_ends as (

    select calendar.date_day as as_of_date
    from calendar
    cross join end_date
    where
        calendar.date_day
        = cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'calendar.month_start')) }} as date)
        and calendar.date_day <= end_date.data_end_date

),

as_of_dates as (

    select as_of_date from month_ends
    union
    select data_end_date from end_date

),

final as (

    select
        as_of_dates.as_of_date,
        as_of_dates.as_of_date = end_date.data_end_date as is_data_end_date
    from as_of_dates
    cross join end_date

)

select * from final
