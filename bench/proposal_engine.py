"""The proposal's conversion of one large local file, for the bench's engine section.

The same steps as bench/proposal_worker.py's process_file, minus S3: pandas.read_csv (what
awswrangler's wr.s3.read_csv runs), DataFrame.to_parquet with pyarrow and snappy (what
wr.s3.to_parquet runs), then fastavro with deflate from the same DataFrame. Prints one JSON line
in engine-child's shape: seconds, cpuSeconds, rows, bytesOut, peakRssMiB.
    bench/.venv/bin/python bench/proposal_engine.py FILE
"""
import io
import json
import resource
import sys
import time

import fastavro
import pandas as pd

from proposal_avro import avro_records, avro_schema


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(path):
    started, cpu = time.perf_counter(), cpu_seconds()
    df = pd.read_csv(path)
    parquet = io.BytesIO()
    df.to_parquet(parquet, engine="pyarrow", compression="snappy", index=False)
    schema = fastavro.parse_schema(avro_schema(df))
    avro = io.BytesIO()
    fastavro.writer(avro, schema, avro_records(df, schema), codec="deflate")
    print(json.dumps({
        "seconds": time.perf_counter() - started,
        "cpuSeconds": cpu_seconds() - cpu,
        "rows": len(df),
        "bytesOut": parquet.tell() + avro.tell(),
        "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
