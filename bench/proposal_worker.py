"""The proposal's approach (../shared/seeds/000_*), built as its slides describe it, for the bench.

An SQS consumer that reads each S3 notification, then in a ThreadPoolExecutor(max_workers=20):
awswrangler reads the CSV into pandas and writes Parquet (snappy) to S3, fastavro writes Avro
(deflate) from the same DataFrame, and boto3 uploads it; the message is deleted when both outputs
exist. Same queue, keys and per-file log line (JSON, msg "converted", ms) as `serve`, so the bench
measures it the same way. Environment: QUEUE_URL, OUTPUT_BUCKET, AWS_ENDPOINT_URL.
"""
import io
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_plus

import awswrangler as wr
import boto3
import botocore.config
import fastavro
import pandas as pd

from proposal_avro import avro_records, avro_schema

QUEUE_URL = os.environ["QUEUE_URL"]
OUTPUT_BUCKET = os.environ["OUTPUT_BUCKET"]
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL")
MAX_WORKERS = 20
WAIT_TIME_SECONDS = int(os.environ.get("WAIT_TIME_SECONDS", "1"))

# The proposal's "connection pooling": one session, a pool as wide as the executor.
session = boto3.Session(region_name=os.environ.get("AWS_REGION", "us-east-1"))
client_config = botocore.config.Config(max_pool_connections=MAX_WORKERS + 10, s3={"addressing_style": "path"})
s3 = session.client("s3", endpoint_url=ENDPOINT, config=client_config)
sqs = session.client("sqs", endpoint_url=ENDPOINT, config=client_config)
if ENDPOINT:
    wr.config.s3_endpoint_url = ENDPOINT
wr.config.botocore_config = client_config

log_lock = threading.Lock()


def log(**entry):
    with log_lock:
        print(json.dumps(entry), flush=True)


def process_file(bucket, key):
    started = time.perf_counter()
    stem = key[:-4] if key.endswith(".csv") else key
    df = wr.s3.read_csv(f"s3://{bucket}/{key}", boto3_session=session)
    wr.s3.to_parquet(df=df, path=f"s3://{OUTPUT_BUCKET}/parquet/{stem}.parquet", compression="snappy", boto3_session=session)
    schema = fastavro.parse_schema(avro_schema(df))
    out = io.BytesIO()
    fastavro.writer(out, schema, avro_records(df, schema), codec="deflate")
    s3.put_object(Bucket=OUTPUT_BUCKET, Key=f"avro/{stem}.avro", Body=out.getvalue(), ContentType="application/avro")
    log(msg="converted", key=key, ms=round((time.perf_counter() - started) * 1000), rows=len(df))


def handle(message):
    try:
        body = json.loads(message["Body"])
        for record in body.get("Records", []):
            process_file(record["s3"]["bucket"]["name"], unquote_plus(record["s3"]["object"]["key"]))
        sqs.delete_message(QueueUrl=QUEUE_URL, ReceiptHandle=message["ReceiptHandle"])
    except Exception as error:  # left on the queue; the redrive policy is the backstop
        log(msg="failed", level="error", err=repr(error))


def main():
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    # Never more received than the pool can start soon: 20 running, one batch waiting.
    slots = threading.BoundedSemaphore(MAX_WORKERS + 10)
    log(msg="serving", workers=MAX_WORKERS)

    def run(message):
        try:
            handle(message)
        finally:
            slots.release()

    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as executor:
        while not stopping.is_set():
            for _ in range(10):
                slots.acquire()
            response = sqs.receive_message(QueueUrl=QUEUE_URL, MaxNumberOfMessages=10, WaitTimeSeconds=WAIT_TIME_SECONDS)
            messages = response.get("Messages", [])
            for _ in range(10 - len(messages)):
                slots.release()
            for message in messages:
                executor.submit(run, message)


if __name__ == "__main__":
    main()
