with

-- a key loaded more than once keeps its latest delivered version (the contract's rule)
{{ ew_current_versions('current_rows', source('marketing', 'private_domain_events'), ['event_id']) }},

renamed as (

    select
        event_id,
        external_user_id,
        user_id,
        cast(event_ts as timestamp) as event_at,
        {{ to_business_date('event_ts') }} as event_date,
        channel,
        event_type,
        group_id,
        campaign_id,
        staff_id,
        cast(sent_at as timestamp) as sent_at,
        {{ to_business_date('sent_at') }} as sent_date,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
