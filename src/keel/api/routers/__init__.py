"""One router per resource. Each carries its full ``/api/v1/...`` prefix itself, so a matched
route's path (used as the metrics label) is the path a client calls."""

API_PREFIX = "/api/v1"
