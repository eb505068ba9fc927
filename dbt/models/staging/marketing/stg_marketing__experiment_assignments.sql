with

source as (

    select * from {{ source('marketing', 'experiment_assignments') }}

),

versions_ranked as (

    -- a key loaded more than once keeps its latest delivered version (the contract's rule)
    select
        *,
        {{ latest_version_rank(['experiment_id', 'user_id']) }} as version_rank
    from source

),

current_rows as (

    select * from versions_ranked
    where version_rank = 1

),

renamed as (

    select
        experiment_id,
        user_id,
        variant,
        cast(assigned_at as timestamp) as assigned_at,
        {{ to_business_date('assigned_at') }} as assigned_date,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
