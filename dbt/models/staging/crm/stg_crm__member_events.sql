with

-- a key loaded more than once keeps its latest delivered version (the contract's rule)
{{ ew_current_versions('current_rows', source('crm', 'member_events'), ['event_id']) }},

renamed as (

    select
        event_id,
        user_id,
        cast(event_ts as timestamp) as event_at,
        {{ to_business_date('event_ts') }} as event_date,
        type as event_type,
        cast(level as bigint) as member_level,
        cast(points as bigint) as points,
        order_id,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
