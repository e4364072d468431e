"""One ``ncinfo --where`` run: the jobs a selection rule selects, instead of IDs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import anyio

from ._client import Client
from ._exceptions import NcInfoError
from ._exitcodes import EXIT_USAGE
from ._inspection import Inspection, _Progress
from ._protocol import JobResult
from ._wait import WaitStatus
from ._where import select_jobs, wait_for_rule

__all__ = ["RuleInspection"]


class RuleInspection(Inspection):
    """An ``Inspection`` whose jobs come from ``plan.where`` (``--where``), not from IDs."""

    async def _inspect(self, client: Client, chunks: AsyncIterator[list[int]]) -> int:
        assert self.plan.where is not None
        if not await self._login(client):
            return EXIT_USAGE  # a signal (its own exit status wins) or the deadline
        return await self._inspect_rule(client, self.plan.where)

    async def _inspect_rule(self, client: Client, rule: str) -> int:
        """``--where``: the jobs the rule selects, page by page as they come (in ID order), or
        each one's last state once none is unfinished (``--wait``).

        Nothing is written before the first page, so a refused rule leaves stdout empty; a
        failure after it closes the document before the error is reported.
        """
        bar = self._progress_bar()
        started = complete = False
        latest: dict[int, JobResult] = {}

        def begin() -> None:
            nonlocal started
            if not started:
                started = True
                self.console.out.write(self.renderer.start())

        try:
            with anyio.CancelScope() as scope, anyio.move_on_after(self._remaining()):
                self._stop = lambda _reason: scope.cancel()
                if self.plan.wait:
                    await self._wait_rule(client, rule, bar, latest)
                else:
                    pages = select_jobs(
                        client, rule, self.plan.select, page_size=self.plan.page_size
                    )
                    async with aclosing(pages):
                        async for page in pages:
                            begin()
                            for result in page:
                                self._emit(result)
                                if bar is not None:
                                    bar.update()
                            self.console.out.flush()
                complete = True
            if latest:
                # --wait: each job's last state, in ID order, even after a signal or deadline.
                begin()
                for job_id in sorted(latest):
                    self._emit(latest[job_id])
        except NcInfoError:
            if started:
                self._finish()
            raise
        finally:
            if bar is not None:
                bar.close()
                self.console.bar = None
        begin()
        self._finish()
        if not complete and self.signal_exit is None:
            self.console.error(
                f"the {self.settings.deadline:g} s deadline passed before every job the rule "
                "selects was fetched"
            )
            return EXIT_USAGE
        if not self.summary.requested:
            self.console.notice(f"no job matches --where {rule!r}")
        await self._check_fields(client)
        return self._status()

    async def _wait_rule(
        self, client: Client, rule: str, bar: _Progress | None, latest: dict[int, JobResult]
    ) -> None:
        """Poll the rule until no job it selected is unfinished; ``latest`` gets each job's
        last result as it arrives, so a cancelled wait still has them."""

        if bar is not None:
            # A wait lasts: show the bar (and its status) at once, not after the usual delay.
            bar.delay = 0.0

        def progress(finished: int, total: int) -> None:
            if bar is not None:
                bar.reset(total=total)
                bar.n = finished
                bar.refresh()

        def report(status: WaitStatus) -> None:
            # On a terminal the bar shows the counts; elsewhere (a CI log) one line each time.
            if bar is not None:
                bar.set_postfix_str(status.describe(), refresh=True)
            else:
                self.console.notice(f"waiting: {status.describe()}")

        outcome = await wait_for_rule(
            client,
            rule,
            self.plan.select,
            terminal=self.plan.terminal,
            poll_interval=self.plan.poll_interval,
            give_up_after=self.plan.wait_timeout,
            page_size=self.plan.page_size,
            progress=progress,
            latest=latest,
            report=report,
        )
        self.unfinished = len(outcome.unfinished)
        if self.unfinished:
            self.console.notice(
                f"{self.unfinished} job(s) still unfinished after {outcome.elapsed:.1f} s "
                f"(--wait-timeout {self.plan.wait_timeout:g}); the oldest is "
                f"{min(outcome.unfinished)}"
            )
