"""Clients of the test broker, each signed in as a principal (onewindow.security.kafka_auth).

Positive tests read and check with `admin` (the broker's own principal, a super user);
negative tests sign in as the principal under test, never as `admin`."""

from __future__ import annotations

from typing import Any

from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.security.kafka_auth import (
    ADMIN,
    client_config,
    department_principal,
    producer_config,
)
from onewindow.topics import Topics
from producers.publisher import DepartmentPublishers


def settings_for(kafka: str, **extra: Any) -> Settings:
    """Settings that reach the test broker (credentials from the session's environment)."""
    return Settings(kafka_bootstrap=kafka, **extra)


def consumer_conf(kafka: str, principal: str = ADMIN, **extra: Any) -> dict[str, Any]:
    """librdkafka consumer settings signed in as `principal` (read_committed)."""
    return {**client_config(settings_for(kafka), principal), **extra}


def department_publishers(kafka: str, topics: Topics) -> DepartmentPublishers:
    """The SDK publishing each event as the department that owns its topic."""
    s = settings_for(kafka)
    return DepartmentPublishers(
        kafka, topics=topics, departments=load_registry().codes, codec=get_codec(),
        config_for=lambda d: producer_config(s, department_principal(d)))


def producer_conf(kafka: str, principal: str = ADMIN, **extra: Any) -> dict[str, Any]:
    """librdkafka producer (or admin client) settings signed in as `principal`."""
    return {**producer_config(settings_for(kafka), principal), **extra}
