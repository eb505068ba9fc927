with

source as (

    select * from {{ source('crm', 'member_events') }}

),

versions_ranked as (

    -- The contract's rule for a key loaded more than once: the row from the latest file wins
    -- (by the date in the file name, then load time, then row number).
    select
        *,
        row_number() over (
            partition by event_id
            order by
                _file_date desc nulls last,
                _loaded_at desc nulls last,
                _row desc nulls last
        ) as version_rank
    from source

),

current_rows as (

    select * from versions_ranked
    where version_rank = 1

),

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
