with

-- a key loaded more than once keeps its latest delivered version (the contract's rule)
{{ ew_current_versions('current_rows', source('marketing', 'campaigns'), ['campaign_id']) }},

renamed as (

    select
        campaign_id,
        name as campaign_name,
        type as campaign_type,
        channel,
        cast(start_at as timestamp) as start_at,
        {{ to_business_date('start_at') }} as start_date,
        cast(end_at as timestamp) as end_at,
        {{ to_business_date('end_at') }} as end_date,
        cast(cost as decimal(18, 2)) as cost_amount,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
