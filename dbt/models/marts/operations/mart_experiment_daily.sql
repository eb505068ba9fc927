-- A/B test arms per assignment date: the daily per-variant series an alert rule compares variants on
-- (alerts/operations.yml, experiment_variant_worse). Same customers and conversion as
-- mart_experiment_results (int_experiment_customers_converted: conflicts left out, a valid order within
-- var ops_experiment_window_days of assignment), dated by the customer's first assignment in business
-- time; conversions count only customers whose window is complete, so a date is final once users_assigned
-- = users.
with

assignments as (

    select * from {{ ref('int_experiment_customers_converted') }}

),

dated as (

    select
        experiment_id,
        variant,
        cast({{ to_business_ts('assigned_at') }} as date) as assignment_date,
        is_window_complete,
        is_converted
    from assignments
    where not is_conflict

),

counted as (

    select
        experiment_id,
        variant,
        assignment_date,
        count(*) as users_assigned,
        sum(case when is_window_complete then 1 else 0 end) as users,
        sum(case when is_window_complete and is_converted then 1 else 0 end) as conversions
    from dated
    group by experiment_id, variant, assignment_date

),

final as (

    select
        experiment_id,
        variant,
        variant = '{{ var("ops_experiment_control_variant") }}' as is_control,
        assignment_date,
        cast(users_assigned as integer) as users_assigned,
        cast(users as integer) as users,
        cast(conversions as integer) as conversions
    from counted

)

select * from final
