-- A/B/n test results per experiment and variant, on customers (one arm each; a customer whose
-- accounts landed in two arms is left out and counted in conflicting_customers): conversion within var
-- ops_experiment_window_days of assignment (complete windows only), lift against the control variant
-- with 95% CIs, two-proportion z-test with a Bonferroni correction for the number of treatment arms,
-- sample-ratio-mismatch on everyone assigned, minimum-sample check, and a plain verdict.
with

assignments as (

    select * from {{ ref('int_experiment_customers_converted') }}

),

conflicts as (

    select
        experiment_id,
        sum(case when is_conflict then 1 else 0 end) as conflicting_customers
    from assignments
    group by experiment_id

),

arms as (

    select
        experiment_id,
        variant,
        count(*) as users_assigned,
        sum(case when is_window_complete then 1 else 0 end) as users,
        sum(case when is_window_complete and is_converted then 1 else 0 end) as conversions
    from assignments
    where not is_conflict
    group by experiment_id, variant

),

comparisons_counted as (

    select
        experiment_id,
        sum(case when variant = '{{ var("ops_experiment_control_variant") }}' then 0 else 1 end) as comparisons
    from arms
    group by experiment_id

),

rated as (

    select
        arms.*,
        comparisons_counted.comparisons,
        conflicts.conflicting_customers,
        {{ safe_share('arms.conversions', 'arms.users') }} as conversion_rate
    from arms
    inner join comparisons_counted
        on arms.experiment_id = comparisons_counted.experiment_id
    inner join conflicts
        on arms.experiment_id = conflicts.experiment_id

),

compared as (

    select
        rated.*,
        control.users_assigned as control_users_assigned,
        control.users as control_users,
        control.conversions as control_conversions,
        control.conversion_rate as control_rate,
        rated.variant = control.variant as is_control,
        cast(rated.conversions + control.conversions as double)
            / nullif(cast(rated.users + control.users as double), 0) as pooled_rate
    from rated
    left join rated as control
        on rated.experiment_id = control.experiment_id
        and control.variant = '{{ var("ops_experiment_control_variant") }}'

),

tested as (

    select
        *,
        conversion_rate - control_rate as absolute_lift,
        sqrt(
            conversion_rate * (1 - conversion_rate) / nullif(users, 0)
            + control_rate * (1 - control_rate) / nullif(control_users, 0)
        ) as absolute_lift_se,
        -- delta method on ln(p_t / p_c)
        sqrt(
            (1 - conversion_rate) / nullif(users * conversion_rate, 0)
            + (1 - control_rate) / nullif(control_users * control_rate, 0)
        ) as log_ratio_se,
        (conversion_rate - control_rate) / nullif(
            sqrt(pooled_rate * (1 - pooled_rate) * (1.0 / nullif(users, 0) + 1.0 / nullif(control_users, 0))),
            0
        ) as z_score,
        -- randomisation is checked on everyone assigned, not only on the windows observed so far
        cast(users_assigned - control_users_assigned as double)
            / nullif(sqrt(cast(users_assigned + control_users_assigned as double)), 0) as srm_z_score
    from compared

),

evaluated as (

    select
        *,
        case when not is_control then {{ two_sided_p_value('z_score') }} end as p_value,
        -- Bonferroni: each of the experiment's treatment arms is one comparison against control
        case when not is_control then least(1.0, {{ two_sided_p_value('z_score') }} * comparisons) end
            as p_value_adjusted,
        case when not is_control then {{ two_sided_p_value('srm_z_score') }} end as srm_p_value,
        least(users, control_users) >= {{ var('ops_experiment_min_users_per_arm') }} as has_min_sample
    from tested

),

verdicts as (

    select
        *,
        coalesce(p_value_adjusted < {{ var('ops_experiment_alpha') }}, false) as is_significant,
        coalesce(srm_p_value < {{ var('ops_experiment_srm_alpha') }}, false) as is_srm,
        case
            when is_control then null
            when srm_p_value < {{ var('ops_experiment_srm_alpha') }} then 'invalid_srm'
            when not has_min_sample then 'insufficient_sample'
            when p_value_adjusted < {{ var('ops_experiment_alpha') }} and absolute_lift > 0 then 'treatment_wins'
            when p_value_adjusted < {{ var('ops_experiment_alpha') }} and absolute_lift < 0 then 'treatment_loses'
            when p_value is null then 'insufficient_sample'
            else 'no_significant_difference'
        end as variant_verdict
    from evaluated

),

final as (

    select
        experiment_id,
        variant,
        is_control,
        cast(users_assigned as integer) as users_assigned,
        cast(users as integer) as users,
        cast(conversions as integer) as conversions,
        conversion_rate,
        case when not is_control then absolute_lift end as absolute_lift,
        case when not is_control then absolute_lift - {{ var('ops_experiment_ci_z') }} * absolute_lift_se end
            as absolute_lift_ci_low,
        case when not is_control then absolute_lift + {{ var('ops_experiment_ci_z') }} * absolute_lift_se end
            as absolute_lift_ci_high,
        case when not is_control then conversion_rate / nullif(control_rate, 0) - 1 end as relative_lift,
        case when not is_control and conversion_rate > 0 and control_rate > 0
            then exp(ln(conversion_rate / control_rate) - {{ var('ops_experiment_ci_z') }} * log_ratio_se) - 1
        end as relative_lift_ci_low,
        case when not is_control and conversion_rate > 0 and control_rate > 0
            then exp(ln(conversion_rate / control_rate) + {{ var('ops_experiment_ci_z') }} * log_ratio_se) - 1
        end as relative_lift_ci_high,
        case when not is_control then z_score end as z_score,
        p_value,
        p_value_adjusted,
        cast(comparisons as integer) as comparisons,
        is_significant,
        srm_p_value,
        is_srm,
        has_min_sample,
        cast(conflicting_customers as integer) as conflicting_customers,
        -- the control row carries its experiment's verdict (the first non-control variant's)
        coalesce(
            variant_verdict,
            min(variant_verdict) over (partition by experiment_id)
        ) as verdict
    from verdicts

)

select * from final
