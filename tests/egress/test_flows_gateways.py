"""Model requests to a Bedrock or Vertex gateway (``ANTHROPIC_BEDROCK_BASE_URL``,
``ANTHROPIC_VERTEX_BASE_URL``: the engine's model host, one of the vendor API's for the proxy)
are named ``model_requests``, as the engine predicts, not ``unclassified``."""

from __future__ import annotations

import pytest

from airlock.egress.flows import UNCLASSIFIED, classify

GATEWAY = "llm-gateway.corp.example"
BEDROCK = "/model/anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream"
VERTEX = (
    "/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5:streamRawPredict"
)


@pytest.mark.parametrize(
    "path", [BEDROCK, VERTEX, "/v1" + VERTEX, "/bedrock" + BEDROCK, "/vertex/v1" + VERTEX]
)
def test_a_gateways_model_request_is_named_model_requests(path: str) -> None:
    assert classify("POST", GATEWAY, path, api_hosts={GATEWAY}) == "model_requests"


def test_such_paths_on_a_host_that_is_no_api_host_stay_unclassified() -> None:
    assert classify("POST", "other.example", BEDROCK, api_hosts={GATEWAY}) == UNCLASSIFIED
