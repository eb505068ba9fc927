-- Win-back (流失召回): the customers with a churn warning on an as-of date (mart_customer_segments),
-- split by whether a marketing touch reached any of their accounts in the 30 days after it; the share
-- with a purchase day within 30, 60 and 90 days after the date (reactivated, 召回), and what was spent
-- on them in the 30 days: touches sent and the discount of their valid orders with a coupon. A window
-- not yet observed to its last day gives null counts and rates.
{%- set horizons = [30, 60, 90] %}

with

segments as (

    select * from {{ ref('mart_customer_segments') }}

),

purchase_days as (

    select * from {{ ref('int_purchase_days_sequenced') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

touches as (

    select * from {{ ref('stg_marketing__touches') }}

),

users as (

    select * from {{ ref('int_users_unified') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

warned as (

    select
        customer_key,
        as_of_date
    from segments
    where churn_warning

),

touches_counted as (

    select
        warned.customer_key,
        warned.as_of_date,
        count(*) as touches_30d
    from warned
    inner join users
        on warned.customer_key = users.customer_key
    inner join touches
        on users.user_id = touches.user_id
        and touches.sent_date > warned.as_of_date
        and touches.sent_date <= cast({{ dbt.dateadd('day', 30, 'warned.as_of_date') }} as date)
    group by
        warned.customer_key,
        warned.as_of_date

),

returns_found as (

    select
        warned.customer_key,
        warned.as_of_date,
        min(purchase_days.purchase_date) as return_date
    from warned
    inner join purchase_days
        on warned.customer_key = purchase_days.customer_key
        and purchase_days.purchase_date > warned.as_of_date
    group by
        warned.customer_key,
        warned.as_of_date

),

coupons_summed as (

    select
        warned.customer_key,
        warned.as_of_date,
        count(*) as coupon_orders_30d,
        sum(orders.discount_amount) as coupon_discount_30d
    from warned
    inner join orders
        on warned.customer_key = orders.customer_key
        and orders.order_date > warned.as_of_date
        and orders.order_date <= cast({{ dbt.dateadd('day', 30, 'warned.as_of_date') }} as date)
    where
        orders.is_valid
        and orders.coupon_id is not null
    group by
        warned.customer_key,
        warned.as_of_date

),

warned_with_outcomes as (

    select
        warned.as_of_date,
        case when touches_counted.customer_key is not null then 'touched' else 'not_touched' end as touch_status,
        coalesce(touches_counted.touches_30d, 0) as touches_30d,
        coalesce(coupons_summed.coupon_orders_30d, 0) as coupon_orders_30d,
        coalesce(coupons_summed.coupon_discount_30d, 0) as coupon_discount_30d,
        {%- for horizon in horizons %}
        case
            when returns_found.return_date
                <= cast({{ dbt.dateadd('day', horizon, 'warned.as_of_date') }} as date) then 1 else 0
        end as reactivated_{{ horizon }}d{% if not loop.last %},{% endif %}
        {%- endfor %}
    from warned
    left join touches_counted
        on warned.customer_key = touches_counted.customer_key
        and warned.as_of_date = touches_counted.as_of_date
    left join returns_found
        on warned.customer_key = returns_found.customer_key
        and warned.as_of_date = returns_found.as_of_date
    left join coupons_summed
        on warned.customer_key = coupons_summed.customer_key
        and warned.as_of_date = coupons_summed.as_of_date

),

statuses_and_all as (

    select * from warned_with_outcomes

    union all

    select
        as_of_date,
        'all' as touch_status,
        touches_30d,
        coupon_orders_30d,
        coupon_discount_30d,
        {%- for horizon in horizons %}
        reactivated_{{ horizon }}d{% if not loop.last %},{% endif %}
        {%- endfor %}
    from warned_with_outcomes

),

statuses_aggregated as (

    select
        as_of_date,
        touch_status,
        count(*) as warned_customers,
        sum(touches_30d) as touches_30d,
        sum(coupon_orders_30d) as coupon_orders_30d,
        sum(coupon_discount_30d) as coupon_discount_30d,
        {%- for horizon in horizons %}
        sum(reactivated_{{ horizon }}d) as reactivated_{{ horizon }}d{% if not loop.last %},{% endif %}
        {%- endfor %}
    from statuses_and_all
    group by
        as_of_date,
        touch_status

),

final as (

    select
        statuses_aggregated.as_of_date,
        statuses_aggregated.touch_status,
        case statuses_aggregated.touch_status
            when 'touched' then '已触达' when 'not_touched' then '未触达' else '全部'
        end as touch_status_zh,
        cast(statuses_aggregated.warned_customers as integer) as warned_customers,
        {%- for horizon in horizons %}
        cast(
            case
                when cast({{ dbt.dateadd('day', horizon, 'statuses_aggregated.as_of_date') }} as date)
                    <= data_end.data_end_date
                    then statuses_aggregated.reactivated_{{ horizon }}d
            end as integer
        ) as reactivated_{{ horizon }}d,
        case
            when cast({{ dbt.dateadd('day', horizon, 'statuses_aggregated.as_of_date') }} as date)
                <= data_end.data_end_date
                then {{ safe_share(
                    'statuses_aggregated.reactivated_' ~ horizon ~ 'd', 'statuses_aggregated.warned_customers'
                ) }}
        end as reactivation_rate_{{ horizon }}d,
        {%- endfor %}
        cast(statuses_aggregated.touches_30d as integer) as touches_30d,
        cast(statuses_aggregated.coupon_orders_30d as integer) as coupon_orders_30d,
        cast(statuses_aggregated.coupon_discount_30d as decimal(18, 2)) as coupon_discount_30d,
        cast({{ dbt.dateadd('day', 30, 'statuses_aggregated.as_of_date') }} as date)
        <= data_end.data_end_date as is_observed_30d,
        data_end.data_end_date
    from statuses_aggregated
    cross join data_end

)

select * from final
