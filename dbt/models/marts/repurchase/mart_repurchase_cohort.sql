-- 30-day repurchase rate (30天复购率) per first-purchase month. A cohort is complete once its
-- youngest members (first purchase on the month's last day) have been observed 30 days; until then
-- its numbers are provisional: is_complete false, repurchase_status 'provisional', no final rate.
with

buyers as (

    select * from {{ ref('int_buyers_summarized') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

cohorts_aggregated as (

    select
        cohort_month,
        count(*) as customers,
        sum(case when is_repurchased_30d then 1 else 0 end) as repurchased_30d
    from buyers
    group by cohort_month

),

completeness_checked as (

    select
        cohorts_aggregated.cohort_month,
        cohorts_aggregated.customers,
        cohorts_aggregated.repurchased_30d,
        {{ period_end('month', 'cohorts_aggregated.cohort_month') }} as cohort_end_date,
        data_end.data_end_date,
        cast(
            {{ dbt.dateadd('day', 30, period_end('month', 'cohorts_aggregated.cohort_month')) }} as date
        ) <= data_end.data_end_date as is_complete
    from cohorts_aggregated
    cross join data_end

),

final as (

    select
        cohort_month,
        cast(customers as integer) as customers,
        cast(repurchased_30d as integer) as repurchased_30d,
        {{ safe_share('repurchased_30d', 'customers') }} as repurchase_rate_30d,
        is_complete,
        case when is_complete then 'final' else 'provisional' end as repurchase_status,
        case when is_complete then {{ safe_share('repurchased_30d', 'customers') }} end
            as final_repurchase_rate_30d,
        cohort_end_date,
        -- days every member of the cohort has been observed after the first purchase day, capped at 30
        cast(
            case
                when cohort_end_date >= data_end_date then 0
                when is_complete then 30
                else {{ dbt.datediff('cohort_end_date', 'data_end_date', 'day') }}
            end as integer
        ) as min_observed_days,
        data_end_date
    from completeness_checked

)

select * from final
