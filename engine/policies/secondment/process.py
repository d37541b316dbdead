"""The secondment process's vocabulary: its key, routes, the kinds of step the register counts, and the
statuses a placement passes through (mobility policy, MP-L)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

PROCESS_KEY = "secondment"
ROUTES = ("application", "opportunity")

# ---------------------------------------------------------------------------------------------- the diagram's names

#: Timed steps of a placement (BPMN element -> kind), as the register lists them.
STEP_KINDS: dict[str, str] = {
    "induct": "induction",
    "file_progress_report": "progress_report",
    "brief_home": "host_briefing",
    "brief_secondee": "home_brief",
    "propose_reentry": "reentry_proposal",
    "confirm_reentry": "reentry",
    "post_placement_report": "post_placement_report",
    "assess_placement": "host_assessment",
    "record_results": "objective_results",
    "evaluate_placement": "evaluation",
}
#: The steps that are reports (MP-E progress and post-placement reports, MP-T and MP-H briefings): "reports filed
#: on time" counts these.
REPORT_KINDS = frozenset({"progress_report", "host_briefing", "home_brief", "post_placement_report"})
#: Acceptance tasks -> (party, form key); the same forms serve the agreement and its extensions.
ACCEPTANCES: dict[str, tuple[str, str]] = {
    "accept_secondee": ("secondee", "acceptance_secondee"),
    "accept_home": ("home", "acceptance_home"),
    "accept_host": ("host", "acceptance_host"),
    "accept_ext_secondee": ("secondee", "acceptance_secondee"),
    "accept_ext_home": ("home", "acceptance_home"),
    "accept_ext_host": ("host", "acceptance_host"),
}
#: Opening this task starts an acceptance round: a new version of the agreement (one per round, like the
#: diagram's "Issue a new version" scripts).
ROUND_OPENERS = {"accept_home": "agreement", "accept_ext_home": "extension"}
CONCERN_TASKS = {"raise_concern_employee": "secondee", "raise_concern_home": "home organisation",
                 "raise_concern_host": "host organisation"}
CONCERN_FOLLOW_UPS = frozenset({"discuss_concern", "decide_concern"})


STATUSES = ("proposed", "published", "applied", "planning", "negotiating", "agreed", "in_progress",
            "post_placement", "closed", "not_supported", "cancelled")
STATUS_LABELS = {
    "proposed": "Proposed", "published": "Opportunity published", "applied": "Applied", "planning": "Planning",
    "negotiating": "Negotiating the agreement", "agreed": "Agreed, not started", "in_progress": "In progress",
    "post_placement": "Post-placement", "closed": "Closed", "not_supported": "Not supported",
    "cancelled": "Cancelled",
}
