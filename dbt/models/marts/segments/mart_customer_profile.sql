-- Customer layers and profile (行为与需求分层, 用户画像): one row per customer with a valid order by the data
-- end date. Behaviour layers from their valid orders (promotion-sensitive, buying rhythm), need layers
-- from their order lines (price-sensitive, brand-loyal, necessity buyer), and the profile of their
-- customer_key account (province, city tier, age band) with channel and member level. Thresholds are dbt
-- vars (layer_*), city tiers the seed city_tiers; rules in docs/metrics.md "Segments".

with

customers as (

    select * from {{ ref('dim_customers') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

order_items as (

    select * from {{ ref('fct_order_items') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

purchase_days as (

    select * from {{ ref('int_purchase_days_sequenced') }}

),

users as (

    select * from {{ ref('stg_crm__users') }}

),

city_tiers as (

    select * from {{ ref('city_tiers') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

referrals as (

    -- referred customers (docs/metrics.md "Referral"); acquired by referral = first valid order within 30 days
    select * from {{ ref('int_referrals_attributed') }}
    where is_converted_30d

),

orders_summarized as (

    select
        orders.customer_key,
        count(*) as valid_orders,
        sum(case when orders.discount_amount > 0 then 1 else 0 end) as discounted_orders
    from orders
    cross join data_end
    where
        orders.is_valid
        and orders.order_date <= data_end.data_end_date
    group by orders.customer_key

),

category_prices_ranked as (

    select
        category_l1,
        {{ percentile_cont('list_price', 0.5) }} as median_list_price
    from products
    where category_l1 is not null
    group by category_l1

),

lines_priced as (

    select
        order_items.customer_key,
        products.brand,
        products.category_l1,
        cast(products.list_price as double) / nullif(cast(category_prices_ranked.median_list_price as double), 0)
            as price_index
    from order_items
    inner join products
        on order_items.sku_id = products.sku_id
    inner join category_prices_ranked
        on products.category_l1 = category_prices_ranked.category_l1
    cross join data_end
    where
        order_items.is_valid
        and order_items.order_date <= data_end.data_end_date

),

brands_counted as (

    select
        customer_key,
        brand,
        count(*) as brand_lines
    from lines_priced
    where brand is not null
    group by
        customer_key,
        brand

),

brands_summarized as (

    select
        customer_key,
        sum(brand_lines) as branded_lines,
        max(brand_lines) as top_brand_lines
    from brands_counted
    group by customer_key

),

lines_summarized as (

    select
        customer_key,
        count(*) as lines,
        avg(price_index) as price_index,
        sum(
            case
                when category_l1 in (
                    {%- for category in var('layer_necessity_categories') %}
                    '{{ category }}'{% if not loop.last %},{% endif %}
                    {%- endfor %}
                ) then 1 else 0
            end
        ) as necessity_lines
    from lines_priced
    group by customer_key

),

gaps_summarized as (

    select
        purchase_days.customer_key,
        count(*) as purchase_days,
        {{ percentile_cont('purchase_days.days_since_previous_purchase', 0.5) }} as median_gap_days,
        avg(cast(purchase_days.days_since_previous_purchase as double)) as mean_gap_days,
        stddev_pop(cast(purchase_days.days_since_previous_purchase as double)) as gap_stddev_days
    from purchase_days
    cross join data_end
    where purchase_days.purchase_date <= data_end.data_end_date
    group by purchase_days.customer_key

),

layers_assigned as (

    select
        orders_summarized.customer_key,
        orders_summarized.valid_orders,
        {{ safe_share('orders_summarized.discounted_orders', 'orders_summarized.valid_orders') }}
            as promotion_order_share,
        orders_summarized.valid_orders >= 2
        and orders_summarized.discounted_orders = orders_summarized.valid_orders as is_promotion_sensitive,
        lines_summarized.price_index,
        coalesce(lines_summarized.price_index <= {{ var('layer_price_index_max') }}, false) as is_price_sensitive,
        {{ safe_share('brands_summarized.top_brand_lines', 'brands_summarized.branded_lines') }} as top_brand_share,
        coalesce(
            brands_summarized.branded_lines >= {{ var('layer_brand_lines_min') }}
            and brands_summarized.top_brand_lines
            >= {{ var('layer_brand_share_min') }} * brands_summarized.branded_lines,
            false
        ) as is_brand_loyal,
        {{ safe_share('lines_summarized.necessity_lines', 'lines_summarized.lines') }} as necessity_share,
        coalesce(
            lines_summarized.necessity_lines >= {{ var('layer_necessity_share') }} * lines_summarized.lines,
            false
        ) as is_necessity_buyer,
        gaps_summarized.purchase_days,
        gaps_summarized.median_gap_days,
        case
            when gaps_summarized.purchase_days = 1 then 'single'
            when gaps_summarized.median_gap_days <= {{ var('layer_compact_gap_days') }} then 'compact'
            when
                gaps_summarized.purchase_days >= 3
                and gaps_summarized.gap_stddev_days
                <= {{ var('layer_cyclical_gap_cv_max') }} * gaps_summarized.mean_gap_days
                then 'cyclical'
            else 'irregular'
        end as buyer_rhythm
    from orders_summarized
    inner join gaps_summarized
        on orders_summarized.customer_key = gaps_summarized.customer_key
    left join lines_summarized
        on orders_summarized.customer_key = lines_summarized.customer_key
    left join brands_summarized
        on orders_summarized.customer_key = brands_summarized.customer_key

),

final as (

    select
        layers_assigned.customer_key,
        layers_assigned.valid_orders,
        layers_assigned.promotion_order_share,
        layers_assigned.is_promotion_sensitive,
        layers_assigned.price_index,
        layers_assigned.is_price_sensitive,
        layers_assigned.top_brand_share,
        layers_assigned.is_brand_loyal,
        layers_assigned.necessity_share,
        layers_assigned.is_necessity_buyer,
        cast(layers_assigned.purchase_days as integer) as purchase_days,
        layers_assigned.median_gap_days,
        layers_assigned.buyer_rhythm,
        case layers_assigned.buyer_rhythm
            when 'single' then '单次购买' when 'compact' then '紧凑型' when 'cyclical' then '周期型' else '不规律'
        end as buyer_rhythm_zh,
        users.province,
        users.city,
        case
            when users.city is null then 'unknown'
            else coalesce(city_tiers.city_tier, 'other')
        end as city_tier,
        case
            when users.birth_year is null then 'unknown'
            when cast(extract(year from data_end.data_end_date) as integer) - users.birth_year < 25 then 'under_25'
            when cast(extract(year from data_end.data_end_date) as integer) - users.birth_year < 35 then '25_34'
            when cast(extract(year from data_end.data_end_date) as integer) - users.birth_year < 45 then '35_44'
            else '45_plus'
        end as age_band,
        customers.registration_channel,
        customers.first_channel,
        customers.member_level,
        customers.is_member,
        referrals.customer_key is not null as acquired_by_referral,
        referrals.referrer_customer_key,
        data_end.data_end_date
    from layers_assigned
    inner join customers
        on layers_assigned.customer_key = customers.customer_key
    left join users
        on layers_assigned.customer_key = users.user_id
    left join city_tiers
        on users.city = city_tiers.city
    left join referrals
        on layers_assigned.customer_key = referrals.customer_key
    cross join data_end

)

select * from final
