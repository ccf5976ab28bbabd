"""The scrape of a fixed scenario is the one the OpenTelemetry exporter path wrote."""

from __future__ import annotations

import pytest

from tests import exposition_cases as cases

pytestmark = pytest.mark.backend_neutral

OPENMETRICS = "application/openmetrics-text;version=1.0.0"


@pytest.fixture
def scenario(define):
    cases.populate(define)


def scraped(client, **headers) -> dict[str, list[str]]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    return cases.families(response.content.decode())


def golden(name: str) -> dict[str, list[str]]:
    return cases.families((cases.GOLDEN / f"{name}.txt").read_text())


def test_the_default_scrape_writes_every_line_as_before(client, scenario):
    expected = golden("default")
    found = scraped(client)
    assert found.keys() == expected.keys()
    for family, lines in expected.items():
        assert found[family] == lines, family


def test_an_openmetrics_scrape_writes_every_line_as_before_plus_created(
    client, scenario
):
    expected = golden("openmetrics")
    found = scraped(client, HTTP_ACCEPT=OPENMETRICS)
    assert found.keys() == expected.keys()
    for family, lines in expected.items():
        # Histograms now state when their counts started (OpenMetrics
        # _created), one line per series after its _sum.
        created = [line for line in found[family] if "_created" in line]
        assert all(line.startswith(f"{family}_created{{") for line in created)
        assert [line for line in found[family] if line not in created] == lines, family
    assert (
        len(
            [
                1
                for line in found["golden_code_latency_milliseconds"]
                if "_created" in line
            ]
        )
        == 2
    )
