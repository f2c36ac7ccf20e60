"""Named checks for test notebooks: every check runs and is reported, the run fails at the end.

Papermill stops at the first cell that raises, which would skip the rest of the report and the
board's teardown. ``Checks`` runs each check, records PASS/FAIL/SKIP without raising, and
``finish()`` runs the teardown (power off) before failing the run; a cell that raises outside
a check still triggers the teardown through IPython's ``post_run_cell`` event::

    checks = Checks(teardown=dut.power.off)

    @checks.check("boots to login")
    def _():
        dut.power.on()
        dut.serial.expect("login:", timeout=60)

    @checks.check("led follows the shell", needs="boots to login")
    def _():
        ...

    checks.finish()   # teardown, summary, AssertionError if anything failed
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


class Skip(Exception):
    """Raised by a check that does not apply to this board (e.g. it has no ``led``): reported
    as SKIP, and it does not fail the run."""


@dataclasses.dataclass
class Result:
    """One check's outcome; ``applies`` is False for a check that does not apply to this board."""

    name: str
    outcome: str
    detail: str = ""
    applies: bool = True


class Checks:
    """A notebook's checks, in order, and the teardown that runs whatever happens."""

    def __init__(self, teardown: Callable[[], Any] | None = None):
        self.results: list[Result] = []
        self.teardown = teardown
        self._torn_down = False
        self._ipython = _ipython()
        if self._ipython is not None and teardown is not None:
            self._ipython.events.register("post_run_cell", self._after_cell)

    def check(self, name: str, needs: str | tuple[str, ...] = ()) -> Callable[[Callable[[], Any]], Result]:
        """Decorator: run the function now as check ``name`` (skipped when a check it ``needs`` did not pass)."""
        needed = (needs,) if isinstance(needs, str) else needs

        def run(body: Callable[[], Any]) -> Result:
            missing = [n for n in needed if self.outcome(n) != PASS]
            if missing:
                return self._record(Result(name, SKIP, f"needs {', '.join(missing)}"))
            try:
                detail = body()
            except Skip as reason:
                return self._record(Result(name, SKIP, str(reason), applies=False))
            except Exception as exc:  # a failed check is reported, not raised (see the module doc)
                return self._record(Result(name, FAIL, f"{type(exc).__name__}: {exc}"))
            return self._record(Result(name, PASS, "" if detail is None else str(detail)))

        return run

    def outcome(self, name: str) -> str | None:
        """PASS, FAIL or SKIP of the check called ``name``; None if it has not run."""
        return next((r.outcome for r in self.results if r.name == name), None)

    @property
    def failed(self) -> list[Result]:
        """Checks that apply to this board and did not pass."""
        return [r for r in self.results if r.outcome != PASS and r.applies]

    def summary(self) -> str:
        """One line per check, then the tally."""
        lines = [f"{r.outcome}  {r.name}" + (f": {r.detail}" if r.detail else "") for r in self.results]
        applying = [r for r in self.results if r.applies]
        passed = len(applying) - len(self.failed)
        skipped = len(self.results) - len(applying)
        tally = f"{passed}/{len(applying)} checks passed" + (
            f", {skipped} not for this board" if skipped else ""
        )
        return "\n".join([*lines, tally])

    def finish(self) -> None:
        """Run the teardown, print the summary, raise AssertionError if any check did not pass."""
        self._run_teardown()
        print(self.summary())
        if self.failed:
            raise AssertionError(
                f"{len(self.failed)} of {len(self.results)} checks did not pass: "
                + ", ".join(r.name for r in self.failed)
            )

    def _record(self, result: Result) -> Result:
        self.results.append(result)
        print(f"{result.outcome}  {result.name}" + (f": {result.detail}" if result.detail else ""))
        return result

    def _after_cell(self, result: Any) -> None:
        if result.error_in_exec is not None or result.error_before_exec is not None:
            self._run_teardown()

    def _run_teardown(self) -> None:
        if self._torn_down or self.teardown is None:
            return
        self._torn_down = True
        if self._ipython is not None:
            self._ipython.events.unregister("post_run_cell", self._after_cell)
        self.teardown()


def _ipython() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()
