with

-- a key loaded more than once keeps its latest delivered version (the contract's rule); most keys
-- come again (every status change is sent again)
{{ ew_current_versions('current_rows', source('oms', 'orders'), ['order_id'], repeats='common') }},

renamed as (

    select
        order_id,
        user_id,
        channel,
        status as order_status,
        cast(order_ts as timestamp) as ordered_at,
        {{ to_business_date('order_ts') }} as order_date,
        cast(paid_ts as timestamp) as paid_at,
        {{ to_business_date('paid_ts') }} as paid_date,
        paid_ts is not null as is_paid,
        cast(items_amount as decimal(18, 2)) as items_amount,
        cast(coalesce(discount_amount, 0) as decimal(18, 2)) as discount_amount,
        cast(coalesce(shipping_fee, 0) as decimal(18, 2)) as shipping_fee_amount,
        cast(pay_amount as decimal(18, 2)) as pay_amount,
        coupon_id,
        campaign_id,
        province,
        city,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
