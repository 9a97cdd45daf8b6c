"""/metrics through prometheus-client: one unit per metric, the snapshot's figures as
separate gauges, build and process metrics, and the probes the adapters feed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from outguard import probes
from outguard.api.metrics import SNAPSHOT_FIGURES, Collector, Scrape, render
from outguard.store.writer import Writer
from tests.unit.api.conftest import Api
from tests.unit.api.test_screening_routes import collected, place

REGISTRY_FOR_TEST = CollectorRegistry()
REGISTRY_FOR_TEST.register(probes.STORE_WRITE_ERRORS)


async def scrape(api: Api) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {sorted labels: value}, every sample of the exposition."""
    response = await api.call("GET", "/metrics", role="readonly")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(await response.text()):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


async def test_the_snapshot_figures_are_one_gauge_each_with_its_unit(api: Api) -> None:
    m = await scrape(api)
    assert "outguard_snapshot" not in m
    assert m["outguard_snapshot_numbers"][()] == 2  # the seeded dnc list
    assert m["outguard_snapshot_lists"][()] >= 1
    for figure in SNAPSHOT_FIGURES:
        assert f"outguard_snapshot_{figure}" in m, figure
    assert 0 <= m["outguard_snapshot_age_seconds"][()] < 600


async def test_build_info_and_process_metrics_come_with_the_exposition(api: Api) -> None:
    m = await scrape(api)
    (labels,) = m["outguard_build_info"]
    assert dict(labels)["version"] and dict(labels)["python"]
    assert m["process_resident_memory_bytes"][()] > 0
    assert "process_cpu_seconds_total" in m
    assert not [name for name in m if name.endswith("_created")]


async def test_decisions_keep_their_names_and_labels(api: Api) -> None:
    place(api, "13800138000", answer_s=3)
    place(api, "13900139000")
    await collected(api, decisions=2)
    m = await scrape(api)
    ok = (("pbx", "default"), ("reason", "ok"), ("verdict", "allow"))
    listed = (("pbx", "default"), ("reason", "dnc_listed"), ("verdict", "block"))
    assert m["outguard_decisions_total"][ok] == 1
    assert m["outguard_decisions_total"][listed] == 1
    assert m["outguard_decision_latency_seconds_count"][()] == 2
    assert m["outguard_call_outcomes_total"][(("pbx", "default"), ("result", "answered"))] == 1
    assert m["outguard_calls_in_progress"][()] == 0
    assert m["outguard_suspensions_active"][(("party_kind", "tenant"),)] == 0


async def test_round_trips_failures_and_store_errors_are_exported(api: Api) -> None:
    with probes.roundtrip("ami", "Ping"):
        pass
    with pytest.raises(RuntimeError), probes.roundtrip("ari", "POST channels/continue"):
        raise RuntimeError("the reply never came")
    probes.SCREENING_FAILURES.labels("ari", "closed").inc()
    m = await scrape(api)
    count = m["outguard_asterisk_roundtrip_seconds_count"]
    assert count[(("interface", "ami"), ("operation", "Ping"))] >= 1
    assert count[(("interface", "ari"), ("operation", "POST channels/continue"))] >= 1
    assert m["outguard_screening_failures_total"][(("adapter", "ari"), ("mode", "closed"))] >= 1


@pytest.mark.parametrize(("method", "path", "operation"), [
    ("POST", "/channels/1712345.6/continue", "POST channels/continue"),
    ("POST", "/channels/1712345.6/variables", "POST channels/variables"),
    ("DELETE", "/channels/1712345.6", "DELETE channels"),
    ("POST", "/bridges/og-b1/addChannel", "POST bridges/addChannel"),
    ("GET", "/applications/outguard", "GET applications"),
    ("PUT", "/applications/outguard/eventFilter", "PUT applications/eventFilter"),
    ("GET", "/asterisk/info", "GET asterisk/info"),
])
def test_an_ari_operation_never_carries_an_id(method: str, path: str, operation: str) -> None:
    assert probes.ari_operation(method, path) == operation


@pytest.mark.parametrize(("line", "operation"), [
    ('SET VARIABLE "OUTGUARD_MESSAGE" "a b"', "SET VARIABLE"),
    ('EXEC MSet "OUTGUARD_VERDICT=allow"', "EXEC MSet"),
    ("GET FULL VARIABLE ${OUTGUARD_ACCOUNT}", "GET FULL"),
    ("ANSWER", "ANSWER"),
])
def test_an_agi_operation_is_the_command_not_its_values(line: str, operation: str) -> None:
    assert probes.agi_operation(line) == operation


def _count(kind: str) -> float:
    value = REGISTRY_FOR_TEST.get_sample_value("outguard_store_write_errors_total",
                                               {"kind": kind})
    return value or 0.0


def test_a_call_log_row_the_store_cannot_write_counts_as_a_store_write_error(
        tmp_path: Path) -> None:
    """A store without the calls table: the batch fails, then the row is dropped."""
    sqlite3.connect(tmp_path / "no-schema.db").close()
    before = _count("call_batch"), _count("call_row")
    writer = Writer(str(tmp_path / "no-schema.db"))
    writer.start()
    try:
        writer.enqueue_call(("d1", "c1", "ari", "t1", "a1", "", "13800138000", "allow",
                             "", "ok", 0, 10, "2026-01-01T00:00:00+00:00"))
        writer.flush(timeout=10)
    finally:
        writer.close()
    assert writer.rows_dropped == 1
    assert (_count("call_batch"), _count("call_row")) == (before[0] + 1, before[1] + 1)


def test_a_stasis_application_taken_by_another_connection_is_counted_and_shown() -> None:
    scrape = Scrape(ari_replaced={"bj-1": 2, "sh-1": 0},
                    ari_standing_aside={"bj-1": 1, "sh-1": 0})
    text = render(CollectorRegistry(), Collector(), scrape).decode()
    samples = {(s.name, tuple(s.labels.items())): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("outguard_ari_app_replaced_total", (("pbx", "bj-1"),))] == 2
    assert samples[("outguard_ari_app_standing_aside", (("pbx", "bj-1"),))] == 1
    assert samples[("outguard_ari_app_standing_aside", (("pbx", "sh-1"),))] == 0
