"""What every browser test does on Label Studio's pages: log in through the form, wait for the task image, submit,
and keep a screenshot of the state the test ended in."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from labeling_assets.resources.labelstudio import LabelStudioClient
from tests.browser.conftest import Labeler

UI_WAIT_S = 60.0  # bounded: the first page load compiles nothing, but the machine is shared
LOAD_ERROR = "There was an issue loading URL"  # what Label Studio's UI shows when it cannot fetch the image


def log_in(driver: WebDriver, wait: WebDriverWait, url: str, person: Labeler, who: str = "the labeler") -> None:
    """Through Label Studio's login form, as a person does."""
    driver.get(f"{url}/user/login/")
    wait.until(lambda d: d.find_element(By.NAME, "email")).send_keys(person.email)
    driver.find_element(By.NAME, "password").send_keys(person.password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait.until(lambda d: "/user/login" not in d.current_url, f"the login form did not accept {who}")


def task_image_state(driver: WebDriver) -> dict[str, Any] | Literal[False]:
    """The labeling UI's task image once the browser is done with it (False while it is still loading)."""
    return driver.execute_script(  # type: ignore[no-any-return]
        "const page = document.body.innerText;"
        "const at = page.indexOf(arguments[0]);"
        "if (at >= 0) return {error: page.slice(at, at + 300)};"
        "const img = document.querySelector('img[alt=\"image\"]');"
        "if (!img || !img.complete) return false;"
        "return {naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight};",
        LOAD_ERROR,
    )


def loaded_task_image(driver: WebDriver, wait: WebDriverWait) -> dict[str, Any]:
    """The task image's natural size once loaded; the test fails with what the page says when it never loads or
    Label Studio could not fetch it."""
    try:
        image = wait.until(task_image_state)
    except TimeoutException:
        text = driver.execute_script("return document.body.innerText.slice(0, 400)")
        pytest.fail(f"the task image never finished loading in {UI_WAIT_S:.0f}s; the page says: {text!r}")
    assert "error" not in image, f"Label Studio could not load the task image: {image['error']!r}"
    return image


def ui_task_id(driver: WebDriver) -> int | None:
    """The task the labeling UI shows (its store is on window.Htx)."""
    return driver.execute_script("return (window.Htx && window.Htx.task) ? window.Htx.task.id : null;")  # type: ignore[no-any-return]


def checked_choices(driver: WebDriver) -> list[str]:
    """The choices the labeling UI shows ticked."""
    boxes = driver.find_elements(By.CSS_SELECTOR, "input.ant-checkbox-input")
    return [box.get_attribute("name") or "" for box in boxes if box.is_selected()]


def submit(driver: WebDriver, wait: WebDriverWait, client: LabelStudioClient, task_id: int) -> None:
    """Press Submit and wait until Label Studio holds the annotation."""
    driver.find_element(By.CSS_SELECTOR, "button[data-testid='bottombar-submit-button']").click()
    wait.until(
        lambda _: client.request("GET", f"/api/tasks/{task_id}/").get("total_annotations") == 1,
        "the submitted annotation never reached Label Studio",
    )


@contextmanager
def screenshot_kept(driver: WebDriver, path: Path) -> Iterator[None]:
    """The screenshot the test took, or the state a failure left, for whoever reads the log."""
    try:
        yield
    finally:
        if not path.exists():
            driver.save_screenshot(str(path))
        print(f"\nscreenshot: {path}")
