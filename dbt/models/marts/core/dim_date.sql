-- One row per business date from the earliest to the latest date in the data, with weekday,
-- Chinese public holidays (seed cn_public_holidays) and the promotion calendar: the e-commerce
-- festivals (38, 618, 11.11, 12.12) and the public holidays shops run holiday sales on (var
-- promotion_holidays: Spring Festival, Labour Day, Mid-Autumn, National Day).
with

bounds as (

    select
        min(first_day) as first_day,
        max(last_day) as last_day
    from (
        select min(registration_date) as first_day, max(registration_date) as last_day
        from {{ ref('stg_crm__users') }}
        union all
        select min(order_date), max(order_date) from {{ ref('stg_oms__orders') }}
        union all
        select min(event_date), max(event_date) from {{ ref('stg_tracking__events') }}
    ) as per_source

),

numbers as (

    {{ day_numbers(5) }}

),

days as (

    select
        cast({{ dbt.dateadd('day', 'numbers.day_number', 'bounds.first_day') }} as date) as date_day
    from numbers
    cross join bounds
    where numbers.day_number <= {{ dbt.datediff('bounds.first_day', 'bounds.last_day', 'day') }}

),

holidays as (

    select * from {{ ref('cn_public_holidays') }}

),

calendar as (

    select
        days.date_day,
        cast(extract(year from days.date_day) as integer) as year_number,
        cast(extract(quarter from days.date_day) as integer) as quarter_number,
        cast(extract(month from days.date_day) as integer) as month_number,
        cast(extract(day from days.date_day) as integer) as day_of_month,
        cast({{ dbt.date_trunc('month', 'days.date_day') }} as date) as month_start,
        cast({{ dbt.date_trunc('week', 'days.date_day') }} as date) as iso_week_start,
        cast({{ dbt.date_trunc('quarter', 'days.date_day') }} as date) as quarter_start,
        {{ iso_day_of_week('days.date_day') }} as iso_day_of_week,
        {{ iso_day_of_week('days.date_day') }} >= 6 as is_weekend,
        holidays.holiday_name_zh,
        holidays.holiday_name_en,
        holidays.holiday_date is not null as is_public_holiday,
        case
            when extract(month from days.date_day) = 6 and extract(day from days.date_day) <= 18 then '618年中大促'
            when extract(month from days.date_day) = 11 and extract(day from days.date_day) <= 11 then '双11'
            when extract(month from days.date_day) = 12 and extract(day from days.date_day) = 12 then '双12'
            when extract(month from days.date_day) = 3 and extract(day from days.date_day) = 8 then '38女王节'
            when holidays.holiday_name_zh in ({{ promotion_holiday_list() }}) then holidays.holiday_name_zh
        end as promotion_name_zh,
        case
            when extract(month from days.date_day) = 6 and extract(day from days.date_day) <= 18
                then '618 mid-year sale'
            when extract(month from days.date_day) = 11 and extract(day from days.date_day) <= 11
                then 'Singles Day (11.11)'
            when extract(month from days.date_day) = 12 and extract(day from days.date_day) = 12 then 'Double 12'
            when extract(month from days.date_day) = 3 and extract(day from days.date_day) = 8 then 'Women''s Day sale'
            when holidays.holiday_name_zh in ({{ promotion_holiday_list() }}) then holidays.holiday_name_en
        end as promotion_name_en,
        (extract(month from days.date_day) = 6 and extract(day from days.date_day) = 18)
            or (extract(month from days.date_day) = 11 and extract(day from days.date_day) = 11)
            or (extract(month from days.date_day) = 12 and extract(day from days.date_day) = 12)
            as is_promotion_peak
    from days
    left join holidays
        on days.date_day = holidays.holiday_date

),

final as (

    select
        date_day,
        year_number,
        quarter_number,
        month_number,
        day_of_month,
        month_start,
        iso_week_start,
        quarter_start,
        iso_day_of_week,
        is_weekend,
        holiday_name_zh,
        holiday_name_en,
        is_public_holiday,
        promotion_name_zh,
        promotion_name_en,
        promotion_name_zh is not null as is_promotion_day,
        is_promotion_peak
    from calendar

)

select * from final
