"""Issue 18: an event-based gateway's timer fires.

SpiffWorkflow 3.2 keeps the gateway's task WAITING with a multiple-event definition and the timer's due time on the
gateway's task. Before, only tasks whose own event is a timer were indexed, so the timer row never existed and sixty
simulated days later the case still waited.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.core.clock import CLOCK
from engine.workflow.models import Timer
from engine.workflow.runtime import Runtime
from engine.workflow.timers import TimerService
from tests.workflow.driver import Driver, deploy_file

MODELS = Path(__file__).parent / "message_models"


@pytest.mark.parametrize("restore", [False, True], ids=["straight", "save_restore"])
def test_conf_an_event_based_gateways_timer_fires_when_no_message_comes(org: Runtime, restore: bool) -> None:
    deploy_file(org, MODELS / "wait_or_give_up.bpmn")
    drive = Driver(org, restore=restore)
    started = CLOCK.now()
    case = drive.start("wait_or_give_up", {})
    with org.db.read() as s:
        [timer] = s.scalars(select(Timer).where(Timer.instance_id == case, Timer.state == "waiting"))
        assert timer.element == "p_which" and timer.due_at == started + timedelta(days=30)
    CLOCK.freeze(started + timedelta(days=29))
    assert TimerService(drive._fresh()).poll() == 0 and drive.instance(case).status == "running"
    CLOCK.freeze(started + timedelta(days=31))
    TimerService(drive._fresh()).poll()
    row = drive.instance(case)
    assert row.status == "completed" and row.data.get("stopped") is True and "paid_amount" not in row.data


def test_conf_the_gateways_timer_is_closed_when_the_message_comes_first(org: Runtime) -> None:
    deploy_file(org, MODELS / "wait_or_give_up.bpmn")
    case = org.start(Driver(org).user("hr"), "wait_or_give_up", {})
    org.send_message(Driver(org).user("admin"), case, "payment_received", {"amount": 7})
    with org.db.read() as s:
        assert [t.state for t in s.scalars(select(Timer).where(Timer.instance_id == case))] == ["closed"]
    CLOCK.freeze(CLOCK.now() + timedelta(days=60))
    assert TimerService(org).poll() == 0
    assert Driver(org).instance(case).data["paid_amount"] == 7
