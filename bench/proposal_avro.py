"""The proposal's DataFrame → Avro step (fastavro, nullable fields typed from pandas dtypes), shared
by bench/proposal_worker.py (the consumer) and bench/proposal_engine.py (one local file)."""

AVRO_TYPES = {"int64": "long", "float64": "double", "bool": "boolean"}


def avro_schema(df):
    fields = []
    for name, dtype in df.dtypes.items():
        avro = AVRO_TYPES.get(str(dtype), "string")
        fields.append({"name": name, "type": ["null", avro]})
    return {"type": "record", "name": "Row", "fields": fields}


def avro_records(df, schema):
    converters = {"long": int, "double": float, "boolean": bool, "string": str}
    names, columns = [], []
    for field in schema["fields"]:
        name, convert = field["name"], converters[field["type"][1]]
        missing = df[name].isna().to_numpy()
        values = df[name].to_numpy(dtype=object)
        names.append(name)
        columns.append([None if gone else convert(value) for value, gone in zip(values, missing)])
    return [dict(zip(names, row)) for row in zip(*columns)]
