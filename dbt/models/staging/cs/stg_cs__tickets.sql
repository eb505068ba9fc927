with

-- a key loaded more than once keeps its latest delivered version (the contract's rule)
{{ ew_current_versions('current_rows', source('cs', 'cs_tickets'), ['ticket_id']) }},

renamed as (

    select
        ticket_id,
        user_id,
        order_id,
        channel,
        category,
        cast(created_at as timestamp) as created_at,
        {{ to_business_date('created_at') }} as created_date,
        cast(first_response_at as timestamp) as first_response_at,
        cast(resolved_at as timestamp) as resolved_at,
        cast(csat as bigint) as csat,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
