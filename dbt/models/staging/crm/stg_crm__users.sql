with

-- a key loaded more than once keeps its latest delivered version (the contract's rule)
{{ ew_current_versions('current_rows', source('crm', 'users'), ['user_id']) }},

renamed as (

    select
        user_id,
        cast(registered_at as timestamp) as registered_at,
        {{ to_business_date('registered_at') }} as registration_date,
        channel,
        phone_hash,
        province,
        city,
        cast(member_level as bigint) as member_level,
        cast(birth_year as bigint) as birth_year,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
