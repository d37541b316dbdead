"""Migration 0011: running cases follow the authority rules of D19-6/7/8 (the migration path of issue 15)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from web.cli import alembic_config, upgrade_database

NOW = "2026-12-01 00:00:00"


def test_d19_7_open_ceo_and_fallback_tasks_of_running_cases_are_moved(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    command.upgrade(alembic_config(url), "0008_inbox_order")  # type: ignore[arg-type]
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO organisation (id, code, name) VALUES (7, 'DPC', 'Darwin Port')"))
        c.execute(sa.text(
            "INSERT INTO person (id, username, name, email, classification, organisation_id, ceo_delegate) VALUES "
            "(1, 'employee', 'Emily', 'e@x', 'SPAO1', 7, 0), (2, 'nobody', 'No Org', 'n@x', 'SPAO1', NULL, 0)"))
        c.execute(sa.text(
            "INSERT INTO process_definition (id, key, version, name, sources, forms, content_hash, executable, "
            f"deployed_at, deployed_by) VALUES (1, 'pay_progression', 1, 'PP', '{{}}', '{{}}', 'h', 1, '{NOW}', 't')"))
        c.execute(sa.text(
            "INSERT INTO process_instance (id, definition_id, process_key, title, status, subject_id, data, "
            f"serialized, started_at, started_by, updated_at, lock_version) VALUES "
            f"(1, 1, 'pay_progression', 'A', 'running', 1, '{{}}', '', '{NOW}', 'hr', '{NOW}', 1), "
            f"(2, 1, 'pay_progression', 'B', 'running', 2, '{{}}', '', '{NOW}', 'hr', '{NOW}', 1)"))
        tasks = [  # id, case, lane, group, state
            (1, 1, "CEO", "ceo", "open"), (2, 1, "Supervisor", "hr", "open"), (3, 1, "HR", "hr", "open"),
            (4, 1, "CEO", "ceo", "completed"), (5, 2, "CEO", "ceo", "open"), (6, 1, None, "hr", "open")]
        for ident, case, lane, group, state in tasks:
            c.execute(sa.text(
                "INSERT INTO human_task (id, instance_id, spiff_task_id, name, title, lane, assigned_group, state, "
                "created_at) VALUES (:id, :case, 'x', 'n', 't', :lane, :grp, :state, :now)"),
                {"id": ident, "case": case, "lane": lane, "grp": group, "state": state, "now": NOW})
    upgrade_database(url)
    with engine.connect() as c:
        groups = dict(c.execute(sa.text("SELECT id, assigned_group FROM human_task")).all())
    engine.dispose()
    assert groups == {1: "ceo:7", 2: "appointment:7", 3: "hr", 4: "ceo", 5: "appointment", 6: "hr"}
