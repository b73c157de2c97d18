"""Provisioning creates each stream app's leader topic under the name Faust declares at
every worker start (issue 17: a worker starting with a broker down could not create it)."""

from __future__ import annotations

import faust
from faust.assignor.leader_assignor import LeaderAssignor

from onewindow.provision import plan
from onewindow.topics import Topics


def test_the_leader_topics_provisioned_are_the_ones_faust_declares() -> None:
    topics = Topics("t17.")
    faust_names = []
    for app_id in (topics.case_state_app, topics.materials_app):
        app = faust.App(app_id, broker="memory://")
        faust_names.append(LeaderAssignor(app)._leader_topic_name)  # noqa: SLF001
    assert list(topics.leader_topics) == faust_names
    planned = {t.name: t.partitions for t in plan(topics, ["tax"], 6)}
    assert all(planned[name] == 1 for name in faust_names)
