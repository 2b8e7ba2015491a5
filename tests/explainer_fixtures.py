"""Fixtures of the explainer tests: the real Explainer service (`python -m
services.explainer`) on a free loopback port, with its Prometheus metrics on
another, in front of the real services of tests/conftest.py.

tests/conftest.py imports the fixtures from here.
"""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from common.channels import open_channel
from ic.v1 import explainer_pb2_grpc
from tests.support.processes import ServiceProcess, free_port


class ExplainerProcess(ServiceProcess):
    """`python -m services.explainer` in front of a classifier and inpainting services."""

    def __init__(self, classifier: str, backends: list[str], **env: str) -> None:
        self.metrics_port = free_port()
        super().__init__(
            "services.explainer",
            env={
                "IC_CLASSIFIER_ADDR": classifier,
                "IC_INPAINT_BACKENDS": ",".join(backends),
                "IC_BACKEND_REFRESH_S": "0.5",
                "IC_METRICS_PORT": str(self.metrics_port),
                **env,
            },
            health_service="ic.v1.Explainer",
        )

    def stub(self) -> explainer_pb2_grpc.ExplainerStub:
        return explainer_pb2_grpc.ExplainerStub(open_channel(self.address))

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` (with these labels) on /metrics."""
        text = requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )


@pytest.fixture(scope="session")
def explainer_service(classifier_service, inpainter_service, patchmatch_service):
    """The explainer in front of the session's classifier, inpainter and patchmatch."""
    with ExplainerProcess(
        classifier_service.address, [inpainter_service.address, patchmatch_service.address]
    ) as proc:
        yield proc
