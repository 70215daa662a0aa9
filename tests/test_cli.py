"""The ``diquis`` command's options: bad values are usage errors, good ones reach the server."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from diquis import cli
from diquis.jobs import JobEngine


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["worker", "--concurrency", "0"], "argument --concurrency: 0 is less than 1"),
        (["worker", "--concurrency", "ten"], "argument --concurrency: 'ten' is not a whole number"),
        (["worker", "--prefetch", "-1"], "argument --prefetch: -1 is less than 0"),
        (["serve", "--prefetch", "1.5"], "argument --prefetch: '1.5' is not a whole number"),
        (["serve", "--concurrency", "-3"], "argument --concurrency: -3 is less than 1"),
    ],
)
def test_bad_counts_are_usage_errors_naming_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


class _Recorded:
    """Stands in for the job server: records how it was made, runs at once."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.ran = False

    def run(self) -> None:
        self.ran = True


@pytest.mark.parametrize(
    ("extra", "concurrency", "prefetch"),
    [
        ([], 10, None),
        (["--prefetch", "0"], 10, 0),
        (["--concurrency", "4", "--prefetch", "40"], 4, 40),
    ],
)
def test_worker_passes_concurrency_and_prefetch_to_the_server(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    concurrency: int,
    prefetch: int | None,
) -> None:
    engine = JobEngine(f"sqlite:///{tmp_path / 'jobs.db'}")
    made: list[_Recorded] = []

    def server(**options: Any) -> _Recorded:
        made.append(_Recorded(options))
        return made[-1]

    monkeypatch.setattr(engine, "server", server)
    module = types.ModuleType("diquis_cli_test_app")
    module.engine = engine  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    args = cli.build_parser().parse_args(["worker", "--app", f"{module.__name__}:engine", *extra])
    assert args.handler(args) == 0
    assert len(made) == 1 and made[0].ran
    assert made[0].options["concurrency"] == concurrency
    assert made[0].options["prefetch"] == prefetch
