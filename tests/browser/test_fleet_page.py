"""The page on a node of a fleet: every job card says which node ran its job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgserver import PostgresServer
from serverproc import ServerProcess

from .conftest import Browsing, fill_basic, generate, wait_job

expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    postgres = PostgresServer().init().start()
    url = postgres.create_database("page_fleet")
    nodes = []
    try:
        for name in ("alpha", "beta"):
            folder = tmp_path / name
            folder.mkdir()
            nodes.append(ServerProcess(folder, DATABASE_URL=url, OPENVINO_DEVICE="CPU", NODE_NAME=name,
                                       WORKER_POLL_SECONDS="0.2").start())
        for node in nodes:
            node.wait_ready()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        postgres.remove()


def test_each_card_names_the_node_that_ran_its_job(browsing: Browsing, fleet: list[ServerProcess]) -> None:
    alpha = fleet[0]
    page: Any = browsing.open(server=alpha)
    expect(page.locator("body")).to_have_attribute("data-fleet", "true")  # /health listed both nodes
    cards = []
    for prompt in ("first", "second", "third"):
        fill_basic(page, prompt)
        card, _ = generate(page)
        cards.append(card)
    for card in cards:
        job = wait_job(alpha, card.get_attribute("data-job-id"))
        assert job["status"] == "completed", job
        expect(card.locator(".job-status")).to_contain_text(f"on {job['node']['name']}")
    browsing.shot(page, "fleet-cards")
