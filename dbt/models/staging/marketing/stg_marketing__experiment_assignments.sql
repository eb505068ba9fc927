with

-- a key loaded more than once keeps its latest delivered version (the contract's rule)
{{ ew_current_versions('current_rows', source('marketing', 'experiment_assignments'), ['experiment_id', 'user_id']) }},

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
