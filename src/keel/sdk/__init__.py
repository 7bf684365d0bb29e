"""Keel's Python client: register, find and fetch model versions, manage users and tokens, and
read and verify the audit trail of a Keel server.

>>> from keel.sdk import Client
>>> Client("http://127.0.0.1:8420")
Client(url='http://127.0.0.1:8420')
"""

from keel.sdk.client import Client
from keel.sdk.types import ModelVersion

__all__ = ["Client", "ModelVersion"]
