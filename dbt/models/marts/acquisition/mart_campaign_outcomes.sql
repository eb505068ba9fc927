-- Campaigns beyond ROI: per campaign, the customers it acquired (their first valid order carries the
-- campaign's tag) and, over those observed 90 days after their first purchase, 90-day repurchase,
-- 90-day LTV and the long-term share (a purchase day in days 61..90: still buying in the third month),
-- each against a matched baseline: customers whose first order carries no campaign, of the same
-- first-purchase month and first channel, weighted to the campaign's mix (expected_* = what the
-- campaign's customers would show at the baseline's rates). The purchase facts are the cohort marts'
-- (int_buyers_summarized, int_purchase_days_sequenced); cost and GMV are mart_campaign_roi's.
{%- set horizon = 90 %}

with

orders as (

    select * from {{ ref('fct_orders') }}

),

buyers as (

    select * from {{ ref('int_buyers_summarized') }}

),

purchase_days as (

    select * from {{ ref('int_purchase_days_sequenced') }}

),

campaign_roi as (

    select * from {{ ref('mart_campaign_roi') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

participants as (

    select
        campaign_id,
        count(distinct customer_key) as participants
    from orders
    where is_valid and campaign_id is not null
    group by campaign_id

),

first_orders as (

    select
        customer_key,
        campaign_id
    from orders
    where is_first_purchase

),

customer_outcomes as (

    select
        purchase_days.customer_key,
        sum(
            case when purchase_days.days_since_first_purchase <= {{ horizon }} then purchase_days.net_revenue else 0 end
        ) as net_revenue_90d,
        max(
            case when purchase_days.days_since_first_purchase > 60
                and purchase_days.days_since_first_purchase <= {{ horizon }} then 1 else 0 end
        ) as is_long_term
    from purchase_days
    group by purchase_days.customer_key

),

new_customers as (

    select
        buyers.customer_key,
        buyers.cohort_month,
        buyers.first_channel,
        first_orders.campaign_id,
        cast({{ dbt.dateadd('day', horizon, 'buyers.first_purchase_date') }} as date)
        <= data_end.data_end_date as is_observed,
        case when coalesce(buyers.days_to_second_purchase <= {{ horizon }}, false) then 1 else 0 end
            as is_repurchased_90d,
        customer_outcomes.net_revenue_90d,
        customer_outcomes.is_long_term
    from buyers
    inner join first_orders
        on buyers.customer_key = first_orders.customer_key
    inner join customer_outcomes
        on buyers.customer_key = customer_outcomes.customer_key
    cross join data_end

),

baseline_cells as (

    select
        cohort_month,
        first_channel,
        {{ safe_share('sum(is_repurchased_90d)', 'count(*)') }} as repurchase_rate_90d,
        {{ safe_share('sum(net_revenue_90d)', 'count(*)') }} as ltv_net_90d,
        {{ safe_share('sum(is_long_term)', 'count(*)') }} as long_term_share
    from new_customers
    where campaign_id is null and is_observed
    group by
        cohort_month,
        first_channel

),

campaign_customers_matched as (

    select
        new_customers.campaign_id,
        new_customers.is_repurchased_90d,
        new_customers.net_revenue_90d,
        new_customers.is_long_term,
        baseline_cells.repurchase_rate_90d as baseline_repurchase_rate_90d,
        baseline_cells.ltv_net_90d as baseline_ltv_net_90d,
        baseline_cells.long_term_share as baseline_long_term_share
    from new_customers
    inner join baseline_cells
        on new_customers.cohort_month = baseline_cells.cohort_month
        and new_customers.first_channel = baseline_cells.first_channel
    where new_customers.campaign_id is not null and new_customers.is_observed

),

matched_aggregated as (

    select
        campaign_id,
        count(*) as matched_customers,
        sum(is_repurchased_90d) as repurchased_90d,
        sum(baseline_repurchase_rate_90d) as expected_repurchased_90d,
        sum(net_revenue_90d) as net_revenue_90d,
        sum(baseline_ltv_net_90d) as expected_net_revenue_90d,
        sum(is_long_term) as long_term_customers,
        sum(baseline_long_term_share) as expected_long_term_customers
    from campaign_customers_matched
    group by campaign_id

),

new_aggregated as (

    select
        campaign_id,
        count(*) as new_customers,
        sum(case when is_observed then 1 else 0 end) as observed_customers
    from new_customers
    where campaign_id is not null
    group by campaign_id

),

final as (

    select
        campaign_roi.campaign_id,
        campaign_roi.campaign_name,
        campaign_roi.campaign_type,
        campaign_roi.start_date,
        cast(coalesce(participants.participants, 0) as integer) as participants,
        cast(coalesce(new_aggregated.new_customers, 0) as integer) as new_customers,
        cast(coalesce(new_aggregated.observed_customers, 0) as integer) as observed_customers,
        cast(coalesce(matched_aggregated.matched_customers, 0) as integer) as matched_customers,
        cast(coalesce(matched_aggregated.repurchased_90d, 0) as integer) as repurchased_90d,
        cast(matched_aggregated.expected_repurchased_90d as double) as expected_repurchased_90d,
        {{ safe_share('matched_aggregated.repurchased_90d', 'matched_aggregated.matched_customers') }}
            as repurchase_rate_90d,
        {{ safe_share('matched_aggregated.expected_repurchased_90d', 'matched_aggregated.matched_customers') }}
            as baseline_repurchase_rate_90d,
        cast(coalesce(matched_aggregated.net_revenue_90d, 0) as decimal(18, 2)) as net_revenue_90d,
        cast(matched_aggregated.expected_net_revenue_90d as double) as expected_net_revenue_90d,
        {{ safe_share('matched_aggregated.net_revenue_90d', 'matched_aggregated.matched_customers') }}
            as ltv_net_90d,
        {{ safe_share('matched_aggregated.expected_net_revenue_90d', 'matched_aggregated.matched_customers') }}
            as baseline_ltv_net_90d,
        cast(coalesce(matched_aggregated.long_term_customers, 0) as integer) as long_term_customers,
        cast(matched_aggregated.expected_long_term_customers as double) as expected_long_term_customers,
        {{ safe_share('matched_aggregated.long_term_customers', 'matched_aggregated.matched_customers') }}
            as long_term_share,
        {{ safe_share('matched_aggregated.expected_long_term_customers', 'matched_aggregated.matched_customers') }}
            as baseline_long_term_share,
        campaign_roi.cost_amount,
        campaign_roi.tagged_gmv,
        {{ safe_share('campaign_roi.cost_amount', 'campaign_roi.tagged_gmv') }} as cost_share_of_gmv,
        data_end.data_end_date
    from campaign_roi
    left join participants
        on campaign_roi.campaign_id = participants.campaign_id
    left join new_aggregated
        on campaign_roi.campaign_id = new_aggregated.campaign_id
    left join matched_aggregated
        on campaign_roi.campaign_id = matched_aggregated.campaign_id
    cross join data_end

)

select * from final
