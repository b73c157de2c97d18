"""What the counter tests share: the IDs of the model the ``client`` fixture loads, and a
clock the tests set."""

from __future__ import annotations

from datetime import datetime

CASE = "GZ20251009000123"
RID = "440106198503121237"
USCC = "91440101MA5CXYW123"
#: the company of the worked example (the applicant of CASE)
NAME = "广州花城餐饮管理有限公司"
#: the password of every test user (meets the policy of onewindow.security.passwords)
PASSWORD = "Counter-test-2025"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
