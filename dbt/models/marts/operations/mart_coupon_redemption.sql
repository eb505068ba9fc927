-- Coupon redemption (优惠券核销) per campaign: valid orders carrying a coupon of the campaign, and of
-- the customers who clicked a coupon of the campaign (coupon_click event, the claim), the share who
-- redeemed one afterwards: a coupon order at or after their first claim. An order placed before the
-- claim did not redeem it.
with

campaigns as (

    select * from {{ ref('stg_marketing__campaigns') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

events as (

    select * from {{ ref('int_events_attributed') }}

),

coupon_orders as (

    select
        campaign_id,
        customer_key,
        order_id,
        order_at,
        net_revenue
    from orders
    where is_valid and coupon_id is not null and campaign_id is not null

),

claimers as (

    select
        campaign_id,
        customer_key,
        min(event_at) as first_claimed_at
    from events
    where event_name = 'coupon_click' and campaign_id is not null and customer_key is not null
    group by campaign_id, customer_key

),

redeemers as (

    select distinct
        claimers.campaign_id,
        claimers.customer_key
    from claimers
    inner join coupon_orders
        on claimers.campaign_id = coupon_orders.campaign_id
        and claimers.customer_key = coupon_orders.customer_key
        and coupon_orders.order_at >= claimers.first_claimed_at

),

coupon_by_campaign as (

    select
        campaign_id,
        count(*) as coupon_orders,
        count(distinct customer_key) as coupon_customers,
        sum(net_revenue) as coupon_revenue
    from coupon_orders
    group by campaign_id

),

tagged_by_campaign as (

    select
        campaign_id,
        count(*) as campaign_orders
    from orders
    where is_valid and campaign_id is not null
    group by campaign_id

),

claims_by_campaign as (

    select
        claimers.campaign_id,
        count(*) as coupon_claimers,
        count(redeemers.customer_key) as claimers_redeemed
    from claimers
    left join redeemers
        on claimers.campaign_id = redeemers.campaign_id
        and claimers.customer_key = redeemers.customer_key
    group by claimers.campaign_id

),

by_campaign as (

    select
        campaigns.campaign_id,
        coalesce(coupon_by_campaign.coupon_orders, 0) as coupon_orders,
        coalesce(coupon_by_campaign.coupon_customers, 0) as coupon_customers,
        coupon_by_campaign.coupon_revenue,
        coalesce(tagged_by_campaign.campaign_orders, 0) as campaign_orders,
        coalesce(claims_by_campaign.coupon_claimers, 0) as coupon_claimers,
        coalesce(claims_by_campaign.claimers_redeemed, 0) as claimers_redeemed
    from campaigns
    left join coupon_by_campaign
        on campaigns.campaign_id = coupon_by_campaign.campaign_id
    left join tagged_by_campaign
        on campaigns.campaign_id = tagged_by_campaign.campaign_id
    left join claims_by_campaign
        on campaigns.campaign_id = claims_by_campaign.campaign_id

),

final as (

    select
        campaign_id,
        cast(coupon_orders as integer) as coupon_orders,
        cast(coupon_customers as integer) as coupon_customers,
        cast(coalesce(coupon_revenue, 0) as decimal(18, 2)) as coupon_revenue,
        {{ safe_share('coupon_orders', 'campaign_orders') }} as coupon_order_share,
        cast(coupon_claimers as integer) as coupon_claimers,
        cast(claimers_redeemed as integer) as claimers_redeemed,
        {{ safe_share('claimers_redeemed', 'coupon_claimers') }} as redemption_rate
    from by_campaign

)

select * from final
