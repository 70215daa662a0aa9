"""The batch pages: the list and one batch, with progress, jobs and continuations."""

from __future__ import annotations

from starlette.testclient import TestClient

from diquis.identity import SESSION_COOKIE
from diquis.jobs import JobEngine
from diquis.jobs.model import ProgressUpdate

from .conftest import SUPERADMIN, XSS, make_app, run_in_thread, token_for


def test_batch_list_and_page(engine: JobEngine) -> None:
    @engine.job(name="demo.batch_item")
    def item(n: int, label: str) -> int:
        return n

    with engine.batch() as b:
        for i in range(4):
            b.enqueue(item, i, XSS)
    after = engine.continue_batch_with(b.id, item, 99, "done", on="any")
    claimed = engine.storage.claim("w:1:x", ["default"], 2, engine.now())
    assert len(claimed) == 2
    client = TestClient(make_app(engine), follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, token_for(SUPERADMIN))

    listing = client.get("/hangfire/batches")
    assert listing.status_code == 200
    assert f'href="/hangfire/batches/{b.id}"' in listing.text
    assert "Started" in listing.text and "<progress" in listing.text
    assert 'data-refresh="list"' in listing.text  # refreshed by the live feed
    assert 'href="/hangfire/batches"' in listing.text  # in the navigation

    page = client.get(f"/hangfire/batches/{b.id}")
    assert page.status_code == 200
    assert f'href="/hangfire/jobs/{after}"' in page.text
    for job_id in b.job_ids:
        assert f'href="/hangfire/jobs/{job_id}"' in page.text
    assert "0 of 4 finished" in page.text
    assert "<script>alert" not in page.text
    assert client.get("/hangfire/batches/999999").status_code == 404

    engine.cancel_batch(b.id)
    run_in_thread(engine.drain)
    page = client.get(f"/hangfire/batches/{b.id}").text
    assert "Cancelled" in page and "4 of 4 finished" in page and 'value="100"' in page


def test_job_page_and_processing_list_show_progress_and_log(engine: JobEngine) -> None:
    @engine.job(name="demo.copy")
    def copy(n: int) -> None:
        """Reports progress."""

    job_id = engine.enqueue(copy, 1)
    [claimed] = engine.storage.claim("w:1:x", ["default"], 1, engine.now())
    engine.storage.save_progress(
        [ProgressUpdate(job_id, claimed.attempt, 40, "copying <b>", ((engine.now(), XSS),))]
    )
    client = TestClient(make_app(engine), follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, token_for(SUPERADMIN))
    page = client.get(f"/hangfire/jobs/{job_id}").text
    assert 'value="40"' in page and "copying &lt;b&gt;" in page
    assert "&lt;script&gt;window.__xss" in page and 'data-poll="1000"' in page
    listing = client.get("/hangfire/jobs/processing").text
    assert 'value="40"' in listing
