"""Presentation helpers (counter.present)."""

from __future__ import annotations

from counter.present import mask_name
from tests.unit.counter.helpers import NAME


def test_mask_name() -> None:
    assert mask_name("陈静", "PERSON") == "陈*"
    assert mask_name("欧阳娜娜", "PERSON") == "欧***"
    assert mask_name("李", "PERSON") == "*"
    assert mask_name(NAME, "ORGANIZATION") == "广州******有限公司"
    assert mask_name(None, "PERSON") == ""
