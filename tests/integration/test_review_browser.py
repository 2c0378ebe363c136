"""A person's view of the reward review: headless Chromium (Debian's, through Selenium and
its chromedriver) opens the local Slack's page, clicks Approve, and sees the message change;
the sandbox has the response APPROVED. `make test` installs chromium and chromium-driver."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from local.stack import LocalStack
from p4f.client import Pay4FeedbackClient
from p4f.reviews import APPROVE_ACTION
from tests.reward_review import REVIEWER

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def browser() -> webdriver.Chrome:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium and chromium-driver are not installed: run `make test` (as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.timeout(240)
def test_a_reviewer_clicks_approve_in_the_browser(tmp_path: Path) -> None:
    parameters = {"RewardReviewMode": "on", "RewardReviewers": REVIEWER}
    with LocalStack(log_dir=tmp_path, parameters=parameters) as stack:
        admin = stack.admin()
        with Pay4FeedbackClient(stack.urls.sandbox, api_key=stack.api_key) as api:
            campaign = api.create_campaign(
                name="UI",
                reward={"amount": "4.00", "currency": "EUR"},
                questions=[{"type": "text", "prompt": "What did you think?"}],
            )
            api.update_campaign(campaign.id, status="ACTIVE")
            response = admin.submit_response(
                campaign.id,
                answers=[{"value": "I loved it <!channel> *really* https://example.com"}],
            )
            admin.score(response.id, 66)
            wait_for(lambda: any(response.id in json.dumps(m.blocks) for m in stack.slack.board()))
            driver = browser()
            try:
                driver.get(f"{stack.urls.slack_page}?refresh=0")
                # The respondent's text is shown as typed: no mention, no bold, no link.
                page = driver.find_element(By.TAG_NAME, "body").text
                assert "I loved it <!channel> *really* https://example.com" in page
                assert driver.find_elements(By.CSS_SELECTOR, "a[href='https://example.com']") == []
                driver.find_element(
                    By.CSS_SELECTOR, f"button[data-action='{APPROVE_ACTION}']"
                ).click()

                def shows_approved() -> bool:
                    driver.get(f"{stack.urls.slack_page}?refresh=0")
                    return (
                        f"Approved by @{REVIEWER}" in driver.find_element(By.TAG_NAME, "body").text
                    )

                try:
                    wait_for(shows_approved)
                except AssertionError:
                    print(stack.slack.clicks(), driver.find_element(By.TAG_NAME, "body").text)
                    raise
                assert driver.find_elements(By.CSS_SELECTOR, "button[data-action]") == []
            finally:
                driver.quit()
            assert api.get_response(response.id).status == "APPROVED"
        [click] = stack.slack.clicks()
        assert (click.user_id, click.status) == (REVIEWER, 200)
        admin.close()
