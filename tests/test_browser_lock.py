"""An operator password locks training, adapter management and the model picker; chat stays open."""

import pytest

from tests.app_server import running_app
from tests.chromium import chromium

pytestmark = [pytest.mark.browser, pytest.mark.real]


def test_training_renders_only_after_the_operator_password(tmp_path):
    env = {"ASSISTANT_ADMIN_PASSWORD": "s3cret-operator", "ASSISTANT_DATA_DIR": str(tmp_path / "data")}
    with running_app(env=env) as url, chromium() as browser:
        page = browser.new_page()
        page.goto(url)
        page.locator("#chat-input").wait_for()
        page.locator("#model-picker input").click()  # the model everyone uses: switched only when unlocked
        page.get_by_role("option", name="Qwen2.5-Coder").click()
        page.get_by_text("Only the operator can switch").first.wait_for(timeout=15000)
        assert "SmolLM2" in page.locator("#loaded-models").inner_text()
        page.get_by_role("tab", name="Fine-tune").click()
        page.get_by_text("locked by the operator").wait_for(timeout=15000)
        assert page.locator("#ft-start").count() == 0, "the training form must not exist while locked"

        page.locator("#admin-password input").fill("wrong")
        page.locator("#admin-unlock-button").click()
        page.get_by_text("Wrong password").first.wait_for(timeout=15000)
        assert page.locator("#ft-start").count() == 0

        page.locator("#admin-password input").fill("s3cret-operator")
        page.locator("#admin-unlock-button").click()
        page.locator("#ft-start").wait_for(timeout=30000)
        assert "s3cret-operator" not in page.content()

        other = browser.new_context().new_page()  # another visitor stays locked
        other.goto(url)
        other.get_by_role("tab", name="Fine-tune").click()
        other.get_by_text("locked by the operator").wait_for(timeout=15000)
        assert other.locator("#ft-start").count() == 0
