-- Category-pair support, confidence and lift (购物篮关联) for two kinds of transaction: a valid order
-- (scope 'order') and a customer's purchases within var ops_basket_customer_window_days of each
-- other (scope 'customer_30d'). Both directions of every pair; lift_rank 1 = strongest pair.
with

order_categories as (

    select * from {{ ref('int_order_categories') }}

),

customer_days as (

    select distinct
        customer_key,
        category_l1,
        order_date
    from order_categories

),

order_pairs as (

    select
        a.category_l1 as category_a,
        b.category_l1 as category_b,
        count(*) as transactions_with_both
    from order_categories as a
    inner join order_categories as b
        on a.order_id = b.order_id
        and a.category_l1 <> b.category_l1
    group by a.category_l1, b.category_l1

),

customer_pairs as (

    select
        a.category_l1 as category_a,
        b.category_l1 as category_b,
        count(distinct a.customer_key) as transactions_with_both
    from customer_days as a
    inner join customer_days as b
        on a.customer_key = b.customer_key
        and a.category_l1 <> b.category_l1
        and b.order_date between
            cast({{ dbt.dateadd('day', -var('ops_basket_customer_window_days'), 'a.order_date') }} as date)
            and cast({{ dbt.dateadd('day', var('ops_basket_customer_window_days'), 'a.order_date') }} as date)
    group by a.category_l1, b.category_l1

),

singles as (

    select
        'order' as scope,
        category_l1,
        count(distinct order_id) as transactions_with
    from order_categories
    group by category_l1

    union all

    select
        'customer_30d' as scope,
        category_l1,
        count(distinct customer_key) as transactions_with
    from order_categories
    group by category_l1

),

totals as (

    select
        'order' as scope,
        count(distinct order_id) as transactions
    from order_categories

    union all

    select
        'customer_30d' as scope,
        count(distinct customer_key) as transactions
    from order_categories

),

pairs as (

    select 'order' as scope, category_a, category_b, transactions_with_both from order_pairs

    union all

    select 'customer_30d' as scope, category_a, category_b, transactions_with_both from customer_pairs

),

measured as (

    select
        pairs.scope,
        pairs.category_a,
        pairs.category_b,
        totals.transactions,
        single_a.transactions_with as transactions_with_a,
        single_b.transactions_with as transactions_with_b,
        pairs.transactions_with_both,
        {{ safe_share('pairs.transactions_with_both', 'totals.transactions') }} as support,
        {{ safe_share('pairs.transactions_with_both', 'single_a.transactions_with') }} as confidence,
        {{ safe_share('pairs.transactions_with_both', 'single_a.transactions_with') }}
            / nullif({{ safe_share('single_b.transactions_with', 'totals.transactions') }}, 0) as lift
    from pairs
    inner join totals
        on pairs.scope = totals.scope
    inner join singles as single_a
        on pairs.scope = single_a.scope
        and pairs.category_a = single_a.category_l1
    inner join singles as single_b
        on pairs.scope = single_b.scope
        and pairs.category_b = single_b.category_l1

),

ranked as (

    select
        *,
        row_number() over (
            partition by scope
            order by lift desc nulls last, support desc, category_a, category_b
        ) as lift_rank
    from measured

),

final as (

    select
        scope,
        category_a,
        category_b,
        cast(transactions as integer) as transactions,
        cast(transactions_with_a as integer) as transactions_with_a,
        cast(transactions_with_b as integer) as transactions_with_b,
        cast(transactions_with_both as integer) as transactions_with_both,
        support,
        confidence,
        lift,
        cast(lift_rank as integer) as lift_rank,
        lift_rank <= {{ var('ops_basket_top_n') }} as is_top_pair
    from ranked

)

select * from final
