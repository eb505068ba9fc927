-- Campaign attributed revenue (归因收入) and ROI (投入产出比, revenue / cost, the seeds' 1:x) under the
-- touch rule of int_orders_attributed, next to the revenue of the orders the order system tags with
-- the campaign. campaign_tier: big_promotion (大促 / 节日促销) when any day of the campaign is a promotion
-- day of the calendar (dim_date: 38, 618, 11.11, 12.12 and the holiday sales), else daily. Not its
-- length: a one-day 12.12 is a big promotion, a month of routine coupons is not.
with

campaigns as (

    select * from {{ ref('stg_marketing__campaigns') }}

),

attributed as (

    select * from {{ ref('int_orders_attributed') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

touches as (

    select * from {{ ref('stg_marketing__touches') }}

),

calendar as (

    select * from {{ ref('dim_date') }}

),

campaign_promotions as (

    select
        campaigns.campaign_id,
        min(calendar.promotion_name_zh) as promotion_name_zh,
        count(*) as promotion_days
    from campaigns
    inner join calendar
        on calendar.date_day >= campaigns.start_date
        and calendar.date_day <= campaigns.end_date
        and calendar.is_promotion_day
    group by campaigns.campaign_id

),

attributed_by_campaign as (

    select
        campaign_id,
        count(*) as attributed_orders,
        count(distinct customer_key) as attributed_customers,
        sum(net_revenue) as attributed_revenue
    from attributed
    group by campaign_id

),

tagged_by_campaign as (

    select
        campaign_id,
        count(*) as tagged_orders,
        sum(pay_amount) as tagged_gmv,
        sum(net_revenue) as tagged_revenue
    from orders
    where is_valid and campaign_id is not null
    group by campaign_id

),

touches_by_campaign as (

    select
        campaign_id,
        count(*) as touches_sent
    from touches
    group by campaign_id

),

final as (

    select
        campaigns.campaign_id,
        campaigns.campaign_name,
        campaigns.campaign_type,
        campaigns.channel,
        campaigns.start_date,
        campaigns.end_date,
        case when campaign_promotions.campaign_id is not null then 'big_promotion' else 'daily' end
            as campaign_tier,
        campaign_promotions.promotion_name_zh,
        cast(coalesce(campaign_promotions.promotion_days, 0) as integer) as promotion_days,
        campaigns.cost_amount,
        cast(coalesce(touches_by_campaign.touches_sent, 0) as integer) as touches_sent,
        cast(coalesce(attributed_by_campaign.attributed_orders, 0) as integer) as attributed_orders,
        cast(coalesce(attributed_by_campaign.attributed_customers, 0) as integer) as attributed_customers,
        cast(coalesce(attributed_by_campaign.attributed_revenue, 0) as decimal(18, 2)) as attributed_revenue,
        {{ safe_share('coalesce(attributed_by_campaign.attributed_revenue, 0)', 'campaigns.cost_amount') }} as roi,
        cast(coalesce(tagged_by_campaign.tagged_orders, 0) as integer) as tagged_orders,
        cast(coalesce(tagged_by_campaign.tagged_gmv, 0) as decimal(18, 2)) as tagged_gmv,
        {{ safe_share('coalesce(tagged_by_campaign.tagged_gmv, 0)', 'campaigns.cost_amount') }} as tagged_gmv_roi,
        cast(coalesce(tagged_by_campaign.tagged_revenue, 0) as decimal(18, 2)) as tagged_revenue,
        {{ safe_share('coalesce(tagged_by_campaign.tagged_revenue, 0)', 'campaigns.cost_amount') }} as tagged_roi
    from campaigns
    left join attributed_by_campaign
        on campaigns.campaign_id = attributed_by_campaign.campaign_id
    left join tagged_by_campaign
        on campaigns.campaign_id = tagged_by_campaign.campaign_id
    left join touches_by_campaign
        on campaigns.campaign_id = touches_by_campaign.campaign_id
    left join campaign_promotions
        on campaigns.campaign_id = campaign_promotions.campaign_id

)

select * from final
