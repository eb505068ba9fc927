with

-- a key loaded more than once keeps its latest delivered version (the contract's rule); a null
-- campaign_id (brand spend) is one key value, as ingest's duplicate check treats it
{{ ew_current_versions('current_rows', source('marketing', 'ad_spend'), ['date', 'channel', 'campaign_id']) }},

renamed as (

    select
        cast(date as date) as spend_date,
        channel,
        campaign_id,
        cast(spend as decimal(18, 2)) as spend_amount,
        cast(impressions as bigint) as impressions,
        cast(clicks as bigint) as clicks,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
