"""Schema migrations at start-up: empty, pre-migration and concurrent starts, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from pgserver import PostgresServer
from alembic import command

from sdedge.job_store import JobStore
from sdedge.job_table import jobs_table
from sdedge.migrations import FIRST_REVISION, alembic_config, upgrade_database


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().init().start()
    yield server
    server.remove()


def head_revision(url: str) -> str:
    with create_engine(url).connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar())


def test_an_empty_sqlite_database_gets_the_whole_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    JobStore(url)
    assert {"jobs", "alembic_version"} <= set(inspect(create_engine(url)).get_table_names())
    assert head_revision(url)


def test_a_database_from_before_migrations_keeps_its_jobs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:  # the jobs table as sdedge's create_all made it before migrations existed
        command.upgrade(alembic_config(conn), FIRST_REVISION)
        conn.execute(text("DROP TABLE alembic_version"))
    with engine.begin() as conn:
        conn.execute(jobs_table.insert().values(
            id="job-old", type="text2img", status="succeeded", priority=0, seq=1.0, request="{}", params="{}",
            files="[]", bytes=0, attempts=1, cancel_requested=False, created_at=1.0, progress_step=0,
            progress_total=0))
    store = JobStore(url)
    assert store.get("job-old").status.value == "succeeded"
    assert head_revision(url)
    JobStore(url)  # a second start finds the schema at head and changes nothing


def _start_node(url: str) -> None:
    JobStore(url).add("text2img", {"prompt": "x"}, {"steps": 1})


def test_ten_nodes_starting_at_once_on_an_empty_postgres_database_all_start(postgres: PostgresServer) -> None:
    url = postgres.create_database("ten_nodes")
    context = multiprocessing.get_context("spawn")
    nodes = [context.Process(target=_start_node, args=(url,)) for _ in range(10)]
    for node in nodes:
        node.start()
    for node in nodes:
        node.join(120)
    assert [node.exitcode for node in nodes] == [0] * 10
    with create_engine(url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar() == 10


def test_upgrading_twice_is_a_no_op(postgres: PostgresServer) -> None:
    url = postgres.create_database("twice")
    engine = create_engine(url)
    upgrade_database(engine)
    first = head_revision(url)
    upgrade_database(engine)
    assert head_revision(url) == first
