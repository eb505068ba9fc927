with

-- a key loaded more than once keeps its latest delivered version (the contract's rule); most keys
-- come again (every status change is sent again)
{{ ew_current_versions('current_rows', source('oms', 'returns'), ['return_id'], repeats='common') }},

renamed as (

    select
        return_id,
        order_id,
        sku_id,
        cast(quantity as bigint) as quantity,
        cast(amount as decimal(18, 2)) as return_amount,
        reason as return_reason,
        status as return_status,
        cast(requested_at as timestamp) as requested_at,
        {{ to_business_date('requested_at') }} as requested_date,
        cast(approved_at as timestamp) as approved_at,
        cast(completed_at as timestamp) as completed_at,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
