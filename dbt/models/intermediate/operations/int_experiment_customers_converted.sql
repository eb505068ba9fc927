-- A table, not a view: two marts and three tests read it, and as a view each read joined every
-- assignment to the customers' orders again (its three tests took 62 s of the L full build).
{{ config(materialized='table') }}

-- One row per experiment and customer assigned to it. Experiments randomise accounts but conversion is
-- measured on the customer (a person, all their accounts): a customer whose accounts landed in two
-- variants saw both and would count in both arms with the same orders, so they are flagged
-- (is_conflict) and left out of the analysis. Everyone else is in one variant from their first
-- assignment; converted when the customer places a valid order in (assigned_at, assigned_at + var
-- ops_experiment_window_days], and the window is complete when it ends by the end of the data end
-- date in business time.
with

assignments as (

    select * from {{ ref('stg_marketing__experiment_assignments') }}

),

users as (

    select * from {{ ref('int_users_unified') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

assigned as (

    select
        assignments.experiment_id,
        assignments.user_id,
        assignments.variant,
        assignments.assigned_at,
        coalesce(users.customer_key, assignments.user_id) as customer_key
    from assignments
    left join users
        on assignments.user_id = users.user_id

),

customers_resolved as (

    select
        experiment_id,
        customer_key,
        min(variant) as variant,
        count(distinct variant) > 1 as is_conflict,
        count(*) as accounts_assigned,
        min(assigned_at) as assigned_at
    from assigned
    group by experiment_id, customer_key

),

windowed as (

    select
        *,
        {{ dbt.dateadd('day', var('ops_experiment_window_days'), 'assigned_at') }} as window_end_at
    from customers_resolved

),

conversions as (

    select
        windowed.experiment_id,
        windowed.customer_key,
        count(*) as orders_in_window
    from windowed
    inner join orders
        on windowed.customer_key = orders.customer_key
        and orders.is_valid
        and orders.order_at > windowed.assigned_at
        and orders.order_at <= windowed.window_end_at
    group by windowed.experiment_id, windowed.customer_key

),

final as (

    select
        windowed.experiment_id,
        windowed.customer_key,
        case when not windowed.is_conflict then windowed.variant end as variant,
        windowed.is_conflict,
        cast(windowed.accounts_assigned as integer) as accounts_assigned,
        windowed.assigned_at,
        windowed.window_end_at,
        -- the window is observed when it ends by the end of the data end date (business time)
        {{ to_business_ts('windowed.window_end_at') }}
            <= cast({{ dbt.dateadd('day', 1, 'data_end.data_end_date') }} as timestamp) as is_window_complete,
        coalesce(conversions.orders_in_window, 0) > 0 as is_converted
    from windowed
    cross join data_end
    left join conversions
        on windowed.experiment_id = conversions.experiment_id
        and windowed.customer_key = conversions.customer_key

)

select * from final
