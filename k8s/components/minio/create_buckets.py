"""Create the S3 buckets named in BUCKETS (comma-separated) at AWS_ENDPOINT_URL, if missing.

Run once by the minio-buckets Job; waits for MinIO to answer, then exits 0.
"""

import os
import sys
import time

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
for bucket in os.environ["BUCKETS"].split(","):
    for _ in range(60):
        try:
            client.head_bucket(Bucket=bucket)
            print(f"bucket {bucket} exists")
            break
        except EndpointConnectionError:
            time.sleep(5)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
                raise
            client.create_bucket(Bucket=bucket)
            print(f"bucket {bucket} created")
            break
    else:
        sys.exit(f"{os.environ['AWS_ENDPOINT_URL']} did not answer in 5 minutes")
