"""The library/app line in packaging: the wheel with no extras runs jobs on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from .conftest import need

ROOT = Path(__file__).resolve().parents[1]

JOB_APP = """
import asyncio, os
from diquis.jobs import JobEngine, State

engine = JobEngine(os.environ.get("JOBAPP_URL", "sqlite:///jobs.db"))

@engine.job
def add(a: int, b: int) -> int:
    return a + b

if __name__ == "__main__":
    job_id = engine.enqueue(add, 20, 22)
    assert asyncio.run(engine.drain()) == 1
    job = engine.get(job_id)
    assert job.state is State.SUCCEEDED and job.result == 42, job
    for name in ("starlette", "fastapi", "sqlalchemy", "psycopg", "redis", "jwt"):
        try:
            __import__(name)
        except ImportError:
            continue
        raise SystemExit(f"{name} is installed without an extra")
    print("ran", job_id)
"""


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed and no extras."""
    tmp = tmp_path_factory.mktemp("wheel")
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(ROOT),
        ]
    )
    need(built.returncode == 0, f"cannot build the wheel: {built.stderr[-500:]}")
    [wheel] = (tmp / "dist").glob("diquis-*.whl")
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    installed = _run([str(python), "-m", "pip", "install", "-q", str(wheel)])
    need(installed.returncode == 0, f"cannot install the wheel: {installed.stderr[-500:]}")
    return env_dir


def test_the_core_wheel_runs_a_job_on_sqlite(core_venv: Path, tmp_path: Path) -> None:
    (tmp_path / "jobapp.py").write_text(textwrap.dedent(JOB_APP))
    result = _run([str(core_venv / "bin" / "python"), "jobapp.py"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ran ")


def test_the_core_wheel_runs_diquis_worker(core_venv: Path, tmp_path: Path) -> None:
    (tmp_path / "jobapp.py").write_text(textwrap.dedent(JOB_APP))
    url = f"sqlite:///{tmp_path}/w.db"
    enqueue = "import jobapp; print(jobapp.engine.enqueue(jobapp.add, 1, 2))"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "JOBAPP_URL": url}
    python = str(core_venv / "bin" / "python")
    job = _run([python, "-c", enqueue], cwd=tmp_path, env=env)
    assert job.returncode == 0, job.stderr
    worker = subprocess.Popen(
        [str(core_venv / "bin" / "diquis"), "worker", "--app", "jobapp:engine"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        check = (
            "import time, sys; from diquis.jobs import JobEngine, State;"
            f" e = JobEngine({url!r}); deadline = time.time() + 30\n"
            f"while e.get({int(job.stdout)}).state is not State.SUCCEEDED:\n"
            "    assert time.time() < deadline, 'not run'; time.sleep(0.1)\n"
        )
        done = _run([python, "-c", check], cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
    finally:
        worker.terminate()
        worker.wait(30)


@pytest.mark.parametrize(
    "command", [["serve"], ["migrate"], ["create-superadmin", "--email", "a@b.c"]]
)
def test_app_commands_need_the_app_extra(core_venv: Path, command: list[str]) -> None:
    result = _run([str(core_venv / "bin" / "diquis"), *command])
    assert result.returncode == 2
    assert "this command needs: pip install 'diquis[app]'" in result.stderr
