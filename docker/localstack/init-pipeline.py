# Creates the pipeline `s3-csv-converter setup` creates, with the same names, attributes and rules:
# input and output buckets, the queue with its dead-letter queue (redrive after 5 receives, 14-day
# retention), the queue policy letting the input bucket send, and the ObjectCreated notification.
#
# One script, three callers: LocalStack runs it as a ready.d init hook (inside its own Python, with
# boto3); the compose `moto` profile runs it in moto's image; test/deploy runs it against moto and
# compares the result with setupPipeline's. Idempotent, like `setup`.
#
# Settings (environment): S3CC_INPUT_BUCKET, S3CC_OUTPUT_BUCKET, S3CC_QUEUE, S3CC_DLQ (default
# <queue>-dlq), S3CC_MAX_RECEIVE_COUNT (5), S3CC_SUFFIXES (".csv,.csv.gz"), AWS_ENDPOINT_URL
# (default http://localhost:4566, LocalStack's own address), AWS_REGION (us-east-1).
#
# No `if __name__ == "__main__"`: LocalStack executes hooks in its interpreter under another name.
import json
import os
import time

import boto3
from botocore.config import Config

NOTIFICATION_ID_PREFIX = "s3-csv-converter"
DLQ_RETENTION_SECONDS = 14 * 24 * 60 * 60
READY_TIMEOUT_SECONDS = 60


def settings():
    queue = os.environ.get("S3CC_QUEUE", "s3cc-events")
    return {
        "input_bucket": os.environ.get("S3CC_INPUT_BUCKET", "s3cc-input"),
        "output_bucket": os.environ.get("S3CC_OUTPUT_BUCKET", "s3cc-output"),
        "queue": queue,
        "dlq": os.environ.get("S3CC_DLQ") or f"{queue}-dlq",
        "max_receive_count": int(os.environ.get("S3CC_MAX_RECEIVE_COUNT", "5")),
        "suffixes": [s for s in os.environ.get("S3CC_SUFFIXES", ".csv,.csv.gz").split(",") if s],
        "endpoint": os.environ.get("AWS_ENDPOINT_URL") or "http://localhost:4566",
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    }


def clients(cfg):
    common = {
        "endpoint_url": cfg["endpoint"],
        "region_name": cfg["region"],
        # Emulators accept any key; boto3 only refuses to sign without one.
        "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    }
    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **common)
    return s3, boto3.client("sqs", **common)


def wait_until_answering(s3):
    """The moto profile starts this beside the emulator, not after it: wait for it to answer."""
    deadline = time.time() + READY_TIMEOUT_SECONDS
    while True:
        try:
            s3.list_buckets()
            return
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(1)


def ensure_bucket(s3, name, region):
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass


def queue_arn(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def s3_send_policy(queue_arn_, bucket_arn):
    account = queue_arn_.split(":")[4]
    condition = {"ArnLike": {"aws:SourceArn": bucket_arn}}
    if account:
        condition["StringEquals"] = {"aws:SourceAccount": account}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "S3CsvConverterInputBucketEvents",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn_,
                "Condition": condition,
            }
        ],
    }


def canonical(rules):
    """Rules compared as S3 echoes them (it capitalises filter rule names)."""
    return sorted(
        (
            rule.get("Id"),
            rule.get("QueueArn"),
            tuple(sorted(rule.get("Events", []))),
            tuple(sorted(f"{f['Name'].lower()}={f['Value']}" for f in rule.get("Filter", {}).get("Key", {}).get("FilterRules", []))),
        )
        for rule in rules
    )


def ensure_notification(s3, bucket, queue_arn_, suffixes):
    """Our rules (Id prefix s3-csv-converter) replace earlier ones of ours; others are kept.
    Skipped when ours are already right, because every write makes S3 send a TestEvent."""
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    current.pop("ResponseMetadata", None)
    ours = lambda rule: rule.get("Id", "").startswith(NOTIFICATION_ID_PREFIX)
    wanted = []
    for suffix in suffixes:
        rule = {"Id": f"{NOTIFICATION_ID_PREFIX}{suffix}", "QueueArn": queue_arn_, "Events": ["s3:ObjectCreated:*"]}
        rule["Filter"] = {"Key": {"FilterRules": [{"Name": "suffix", "Value": suffix}]}}
        wanted.append(rule)
    existing = current.get("QueueConfigurations", [])
    if canonical([r for r in existing if ours(r)]) == canonical(wanted):
        return
    current["QueueConfigurations"] = [r for r in existing if not ours(r)] + wanted
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=current)


def create_pipeline():
    cfg = settings()
    s3, sqs = clients(cfg)
    wait_until_answering(s3)
    ensure_bucket(s3, cfg["input_bucket"], cfg["region"])
    ensure_bucket(s3, cfg["output_bucket"], cfg["region"])

    dlq_url = sqs.create_queue(QueueName=cfg["dlq"])["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=dlq_url, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)})
    dlq_arn = queue_arn(sqs, dlq_url)

    queue_url = sqs.create_queue(QueueName=cfg["queue"])["QueueUrl"]
    arn = queue_arn(sqs, queue_url)
    partition = arn.split(":")[1] or "aws"
    bucket_arn = f"arn:{partition}:s3:::{cfg['input_bucket']}"
    # Before the notification: AWS checks that S3 may send to the queue when it is configured.
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": cfg["max_receive_count"]}),
            "Policy": json.dumps(s3_send_policy(arn, bucket_arn)),
        },
    )
    ensure_notification(s3, cfg["input_bucket"], arn, cfg["suffixes"])
    print(json.dumps({"inputBucket": cfg["input_bucket"], "outputBucket": cfg["output_bucket"], "queueUrl": queue_url, "dlqUrl": dlq_url}))


create_pipeline()
