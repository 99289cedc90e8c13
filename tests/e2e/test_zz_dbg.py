import time
import pytest
from test_ui_browser import *  # noqa
from ui_harness import WORKING_GROUP

def test_dbg(page, served):
    served.llm.delay_s = 0.5
    message = ask(page, WORKING_GROUP)
    expect(message).to_contain_text("The working group")
    page.locator("#ka-stop").click()
    expect(message).to_contain_text("Stopped")
    served.llm.delay_s = 0.0
    t0 = time.time()
    page.locator("#ka-question textarea").fill(WORKING_GROUP)
    page.locator("#ka-question textarea").press("Enter")
    for i in range(12):
        time.sleep(1)
        q = served.app._queue
        print(round(time.time()-t0,1), bot_messages(page).count(), len(served.director.prompts), [(k, len(v.queue), v.current_concurrency) for k, v in q.event_queue_per_concurrency_id.items()] if hasattr(q, "event_queue_per_concurrency_id") else None, page.locator("#ka-chat .status-tracker, #ka-chat [data-testid=status-tracker]").first.inner_text()[:80])
    page.screenshot(path="/tmp/uiwork/dbg.png", full_page=True)
