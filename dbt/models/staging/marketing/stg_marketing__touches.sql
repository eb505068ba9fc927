with

-- a key loaded more than once keeps its latest delivered version (the contract's rule)
{{ ew_current_versions('current_rows', source('marketing', 'marketing_touches'), ['touch_id']) }},

renamed as (

    select
        touch_id,
        campaign_id,
        user_id,
        channel,
        cast(sent_at as timestamp) as sent_at,
        {{ to_business_date('sent_at') }} as sent_date,
        cast(opened_at as timestamp) as opened_at,
        cast(clicked_at as timestamp) as clicked_at,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
