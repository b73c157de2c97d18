"""gateway.publish.Sent: a request's records settled one by one on the loop, the first
outcome of each counting, done once all are settled, each outcome told as it comes."""

from __future__ import annotations

import asyncio

from gateway.publish import Sent, Unavailable


def test_records_settle_one_by_one_and_the_first_outcome_counts() -> None:
    async def run() -> None:
        told: list[tuple[int, BaseException | None]] = []
        sent = Sent(asyncio.get_running_loop(), 3, lambda i, e: told.append((i, e)))
        assert len(sent) == 3 and not sent.done.done()
        failure = Unavailable("dept.x.events: Broker: timed out")
        sent.settle(2, failure)
        sent.settle(0, None)
        assert not sent.done.done() and not sent.settled(1)
        assert not sent.acknowledged(1) and sent.error(1) is None  # pending
        sent.settle(1, None)
        sent.settle(1, failure)  # a second outcome is ignored
        assert sent.done.done() and sent.done.result() is None
        assert [sent.acknowledged(i) for i in range(3)] == [True, True, False]
        assert sent.error(2) is failure
        assert told == [(2, failure), (0, None), (1, None)]

    asyncio.run(run())


def test_no_records_is_done_at_once_and_a_failing_callback_still_completes() -> None:
    async def run() -> None:
        assert Sent(asyncio.get_running_loop(), 0).done.done()

        def broken(_i: int, _e: BaseException | None) -> None:
            raise RuntimeError("bug")

        sent = Sent(asyncio.get_running_loop(), 1, broken)
        try:
            sent.settle(0, None)
        except RuntimeError:
            pass
        assert sent.done.done() and sent.acknowledged(0)

    asyncio.run(run())
