-- Repurchase cycle (90天复购周期): days between consecutive purchase days of a customer, over the
-- gaps that end in the 90 days up to and including as_of_date (as_of_date - 89 .. as_of_date).
-- One row for the data end date and one for each month end before it, to chart the trend.
with

purchase_days as (

    select * from {{ ref('int_purchase_days_sequenced') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

gaps as (

    select
        purchase_date as gap_end_date,
        days_since_previous_purchase as gap_days
    from purchase_days
    where previous_purchase_date is not null

),

month_ends as (

    select distinct
        {{ period_end('month', period_start('month', 'purchase_date')) }} as as_of_date
    from purchase_days

),

as_of_dates as (

    select month_ends.as_of_date
    from month_ends
    cross join data_end
    where month_ends.as_of_date < data_end.data_end_date

    union all

    select data_end_date as as_of_date
    from data_end

),

windows as (

    select
        as_of_dates.as_of_date,
        cast({{ dbt.dateadd('day', -89, 'as_of_dates.as_of_date') }} as date) as window_start_date,
        data_end.data_start_date,
        data_end.data_end_date
    from as_of_dates
    cross join data_end

),

gaps_windowed as (

    select
        windows.as_of_date,
        windows.window_start_date,
        windows.data_start_date,
        windows.data_end_date,
        gaps.gap_days
    from windows
    left join gaps
        on gaps.gap_end_date >= windows.window_start_date
        and gaps.gap_end_date <= windows.as_of_date

),

final as (

    select
        as_of_date,
        cast(count(gap_days) as integer) as gaps,
        {{ percentile_cont('gap_days', 0.5) }} as median_gap_days,
        avg(cast(gap_days as double)) as mean_gap_days,
        {{ percentile_cont('gap_days', 0.25) }} as p25_gap_days,
        {{ percentile_cont('gap_days', 0.75) }} as p75_gap_days,
        window_start_date,
        -- false while the window reaches back before the first order in the data
        window_start_date >= data_start_date as is_full_window,
        as_of_date = data_end_date as is_data_end_date
    from gaps_windowed
    group by
        as_of_date,
        window_start_date,
        data_start_date,
        data_end_date

)

select * from final
