"""Drive whole cases through the runtime, as the people in the lanes would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from engine.core.db import Database
from engine.people.models import User
from engine.workflow.bundles import read_bundle
from engine.workflow.definitions import SPECS, deploy
from engine.workflow.models import HumanTask, ProcessInstance
from engine.workflow.runtime import Runtime


def deploy_file(runtime: Runtime, path: Path) -> None:
    """Deploy one BPMN file (no forms) as a new version of its process."""
    with runtime.db.unit_of_work() as uow:
        deploy(uow.session, read_bundle({path.name: path.read_bytes()}, None), "test")
        uow.commit()


class Driver:
    """Completes tasks by element id as a named user. With `restore=True` every step starts from
    nothing but the database: a new connection pool and an empty spec cache, so each step proves the
    saved state is whole."""

    def __init__(self, runtime: Runtime, restore: bool = False) -> None:
        self.runtime = runtime
        self.restore = restore

    def _fresh(self) -> Runtime:
        if self.restore:
            self.runtime.db.dispose()
            SPECS.clear()
            self.runtime = Runtime(Database(self.runtime.settings.database_url), self.runtime.settings)
        return self.runtime

    def user(self, username: str) -> User:
        with self.runtime.db.read() as s:
            user = s.scalars(select(User).where(User.username == username)).one()
            _ = user.person
            s.expunge(user)
            return user

    def start(self, process: str, data: dict[str, Any], as_user: str = "hr") -> int:
        return self._fresh().start(self.user(as_user), process, data)

    def open_task(self, instance_id: int, name: str) -> HumanTask:
        with self.runtime.db.read() as s:
            task = s.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.name == name,
                                                     HumanTask.state == "open")).first()
            assert task is not None, f"no open task {name}; open: {self.open_tasks(instance_id)}"
            _ = task.assignee
            s.expunge(task)
            return task

    def open_tasks(self, instance_id: int) -> list[str]:
        with self.runtime.db.read() as s:
            return list(s.scalars(select(HumanTask.name).where(HumanTask.instance_id == instance_id,
                                                               HumanTask.state == "open").order_by(HumanTask.id)))

    def complete(self, instance_id: int, name: str, as_user: str, data: dict[str, Any]) -> None:
        task = self.open_task(instance_id, name)
        self._fresh().complete_task(self.user(as_user), task.id, data)

    def instance(self, instance_id: int) -> ProcessInstance:
        with self.runtime.db.read() as s:
            row = s.get(ProcessInstance, instance_id)
            assert row is not None
            s.expunge(row)
            return row
