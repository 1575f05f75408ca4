"""A real S3 API on 127.0.0.1 (moto's server) for tests of experiments kept in a bucket."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from tests.ports import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def s3_bucket(bucket: str = "sweeps") -> Iterator[str]:
    """Serve S3 on a free local port with one empty bucket; yields a storage_path URI in it.

    The caller puts CREDENTIALS in the environment (any value passes moto's checks).
    """
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
        yield f"s3://{bucket}/runs?endpoint_override={endpoint}&scheme=http&region=us-east-1"
    finally:
        server.stop()
