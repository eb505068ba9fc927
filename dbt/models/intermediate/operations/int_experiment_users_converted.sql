-- One row per experiment assignment: whether the user's customer placed a valid order within
-- var ops_experiment_window_days after assignment, and whether that window has been fully observed.
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
        coalesce(users.customer_key, assignments.user_id) as customer_key,
        {{ dbt.dateadd('day', var('ops_experiment_window_days'), 'assignments.assigned_at') }} as window_end_at
    from assignments
    left join users
        on assignments.user_id = users.user_id

),

conversions as (

    select
        assigned.experiment_id,
        assigned.user_id,
        count(*) as orders_in_window
    from assigned
    inner join orders
        on assigned.customer_key = orders.customer_key
        and orders.is_valid
        and orders.order_at > assigned.assigned_at
        and orders.order_at <= assigned.window_end_at
    group by assigned.experiment_id, assigned.user_id

),

final as (

    select
        assigned.experiment_id,
        assigned.user_id,
        assigned.variant,
        assigned.customer_key,
        assigned.assigned_at,
        assigned.window_end_at,
        -- the window is observed when it ends by the end of the data end date (business time)
        {{ to_business_ts('assigned.window_end_at') }}
            <= cast({{ dbt.dateadd('day', 1, 'data_end.data_end_date') }} as timestamp) as is_window_complete,
        coalesce(conversions.orders_in_window, 0) > 0 as is_converted
    from assigned
    cross join data_end
    left join conversions
        on assigned.experiment_id = conversions.experiment_id
        and assigned.user_id = conversions.user_id

)

select * from final
