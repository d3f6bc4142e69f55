"""The web console in real headless Chromium (Debian's, through Selenium and its
chromium-driver) against a real `family-notify serve --web`, Mosquitto and, in the first
test, the real assistant process hearing "help, I fell" through PortAudio.

Screenshots of the pages go to the test's folder, and also to $CONSOLE_SCREENSHOTS when set
(`CONSOLE_SCREENSHOTS=docs/screenshots pytest tests/e2e/test_family_web.py` renews the
README's)."""

from __future__ import annotations

import base64
import datetime as dt
import os
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from protocol import (
    DeviceStatus,
    EmergencyAlert,
    HealthReading,
    ReminderMissed,
    ReminderTaken,
    create,
)
from protocol.schema import utc_timestamp
from tests.assistant_process import AssistantProcess, device_config, wait_for
from tests.audio_devices import virtual_audio
from tests.broker import Mosquitto, free_port
from tests.browser import PHONE, chromium
from tests.family_process import D, FamilyWorker, H, device_standin, family_cli, ok
from tests.family_web import PASSWORDS, set_password, two_households
from tests.web_proxy import ConsoleProxy

pytestmark = pytest.mark.e2e

ZONE = "Europe/Berlin"  # the household's, and the device's in these tests


def shoot(browser: WebDriver, tmp_path: Path, name: str, max_height: int = 1600) -> None:
    """The whole page (up to `max_height` CSS pixels), as PNG."""
    width, height = browser.execute_script(
        "return [document.documentElement.clientWidth, document.documentElement.scrollHeight];"
    )
    clip = {"x": 0, "y": 0, "width": width, "height": min(height, max_height), "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    png = base64.b64decode(shot["data"])
    assert len(png) > 5000  # something was drawn
    (tmp_path / f"{name}.png").write_bytes(png)
    if os.environ.get("CONSOLE_SCREENSHOTS"):
        target = Path(os.environ["CONSOLE_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{name}.png").write_bytes(png)


def sign_in(browser: WebDriver, url: str, household: str, member: str) -> None:
    browser.get(url + "login")
    browser.find_element(By.ID, "household").send_keys(household)
    browser.find_element(By.ID, "member").send_keys(member)
    password = browser.find_element(By.ID, "password")
    password.send_keys(PASSWORDS[(household, member)])
    password.send_keys(Keys.ENTER)
    until(browser, lambda: text(browser, "h1") == "Alerts")


def until(browser: WebDriver, condition, timeout: float = 30.0):
    """Wait for `condition()`; a page replaced while it looks (a live update, a navigation
    finishing) is looked at again."""
    wait = WebDriverWait(
        browser, timeout, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]
    )
    return wait.until(lambda b: condition())


def mark(browser: WebDriver) -> None:
    """A note in the page's memory: still there later means the page was not reloaded."""
    browser.execute_script("window.__notReloaded = true;")


def not_reloaded(browser: WebDriver) -> bool:
    return browser.execute_script("return window.__notReloaded === true;")


def text(browser: WebDriver, css: str) -> str:
    """What a part of the page shows, read in one step (a live update cannot get between)."""
    return browser.execute_script(
        "const found = document.querySelector(arguments[0]);return found ? found.innerText : '';",
        css,
    )


def main_text(browser: WebDriver) -> str:
    return text(browser, "#main")


def click(browser: WebDriver, css: str, xpath: str) -> None:
    """A real click on the element at `xpath` inside `css`, again if a live update replaced
    it meanwhile."""
    for _ in range(5):
        try:
            browser.find_element(By.CSS_SELECTOR, css).find_element(By.XPATH, xpath).click()
            return
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{css} kept being replaced")


def test_the_family_answers_an_alert_and_sets_a_reminder_in_the_browser(
    speech, tmp_path: Path, broker: Mosquitto
) -> None:
    family = two_households(tmp_path / "family", broker, step_s=30.0)
    samples = speech.samples(speech.flite("help, I fell.", "rms"), lead_s=1.0, tail_s=240.0)
    audio = virtual_audio(tmp_path / "audio", samples)
    config = device_config(tmp_path / "device.toml", broker, H, D)
    with FamilyWorker(family, web="127.0.0.1:0") as worker, chromium() as browser:
        url = worker.web_url or ""
        browser.get(url + "login")
        shoot(browser, tmp_path, "sign-in")
        sign_in(browser, url, H, "anna")
        assert "No open alerts" in main_text(browser)
        mark(browser)

        device = AssistantProcess(config, dict(audio.env, TZ=ZONE))
        try:
            # The spoken alert appears in the open page, without reloading it.
            alert_id = until(
                browser,
                lambda: browser.execute_script(
                    "const a = document.querySelector('[data-alert]');return a && a.dataset.alert;"
                ),
                120,
            )
            assert not_reloaded(browser)
            card = f"[data-alert='{alert_id}']"
            assert "Mum asked for help" in text(browser, card)
            assert "Emergency" in text(browser, card)
            assert "A new alert has arrived" in text(browser, "#live")
            shoot(browser, tmp_path, "alerts")

            # One click acknowledges it; the device says who has seen it.
            click(browser, card, ".//button[normalize-space()='I have seen it']")
            until(browser, lambda: "Thank you. Your answer was sent" in main_text(browser))
            said = "Your daughter has seen your message."
            assert wait_for(lambda: said in device.said(), 30), device.lines
            assert "Open alerts (0)" in main_text(browser)
            assert "Acknowledged by Anna" in text(browser, "#history")

            browser.find_element(By.CSS_SELECTOR, f"a[href='/alerts/{alert_id}']").click()
            until(browser, lambda: "Escalation trail" in main_text(browser))
            trail = main_text(browser)
            assert "Raised by the device" in trail and "Acknowledged · Anna · seen" in trail
            shoot(browser, tmp_path, "alert-trail")

            # A reminder added in the page: the device takes it, and says it at its time.
            browser.find_element(By.LINK_TEXT, "Reminders").click()
            until(browser, lambda: browser.find_elements(By.ID, "new-text"))
            due = dt.datetime.now(ZoneInfo(ZONE)).replace(second=0, microsecond=0)
            due += dt.timedelta(minutes=1)
            browser.find_element(By.ID, "new-text").send_keys("Time for your walk")
            at = browser.find_element(By.ID, "new-at")
            browser.execute_script("arguments[0].value = arguments[1];", at, due.strftime("%H:%M"))
            browser.find_element(By.XPATH, "//button[normalize-space()='Add the reminder']").click()
            until(browser, lambda: "The reminder was sent to the device." in main_text(browser))
            mark(browser)
            assert wait_for(
                lambda: any(s.startswith("A new reminder was set up for you: Time for your walk")
                            for s in device.said()),
                30,
            ), "\n".join(device.lines + device.errors[-60:])  # fmt: skip
            # The device's confirmation reaches the open page, live.
            until(browser, lambda: "on the device" in text(browser, "[data-reminder]"))
            assert not_reloaded(browser)
            announced = "This is your reminder: Time for your walk."
            assert wait_for(lambda: announced in device.said(), 150), device.lines
            heard_at = dt.datetime.now(ZoneInfo(ZONE))
            assert heard_at >= due - dt.timedelta(seconds=1)  # at its time, not before

            # Someone of another household sees nothing of it, and cannot touch it.
            with chromium() as other:
                sign_in(other, url, "h2", "zoe")
                assert "No open alerts" in main_text(other)
                assert "No earlier alerts" in main_text(other)
                other.get(url + "reminders")
                assert "No reminders yet" in main_text(other) and "walk" not in main_text(other)
                other.get(url + f"alerts/{alert_id}")
                assert text(other, "h1") == "Not found"
                other.get(url)
                csrf = other.find_element(By.NAME, "csrf").get_attribute("value")
                status = other.execute_async_script(
                    "const done = arguments[arguments.length - 1];"
                    "fetch(arguments[0], {method: 'POST', headers: {'Content-Type':"
                    " 'application/x-www-form-urlencoded'}, body: 'action=resolved&csrf=' +"
                    " arguments[1]}).then(r => done(r.status));",
                    f"/alerts/{alert_id}/ack",
                    csrf,
                )
                assert status == 404
        finally:
            err = device.stop()
    state = ok(family_cli(family, "alert", "show", alert_id))
    assert '"acked_by": "anna"' in state and '"state": "acknowledged"' in state, err[-2000:]


def test_readings_device_status_large_text_keyboard_and_a_phone_screen(
    tmp_path: Path, broker: Mosquitto
) -> None:
    family = two_households(tmp_path / "family", broker)
    ok(family_cli(family, "reminder", "add", H, "morning-pills", "--text", "Morning pills",
                  "--at", "08:00", "--medication", "Ramipril", "--dose", "5 mg"))  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    with device_standin(broker) as phone, FamilyWorker(family, web="127.0.0.1:0") as worker:
        phone.send(create(DeviceStatus(state="online", reason="connected", battery=76), H, D),
                   retain=True)  # fmt: skip
        events = []
        for day in range(14):
            when = now - dt.timedelta(days=13 - day, hours=2)
            ts = utc_timestamp(when)
            events += [
                HealthReading(measure="blood_pressure", value=128 + day % 5 * 3,
                              diastolic=82 + day % 3 * 2, taken_at=ts, unit="mmHg"),
                HealthReading(measure="heart_rate", value=66 + day % 4 * 2, taken_at=ts),
                ReminderTaken(reminder_id="morning-pills", due=ts, taken_at=ts)
                if day % 4 else ReminderMissed(reminder_id="morning-pills", due=ts),
            ]  # fmt: skip
        phone.send_many([create(body, H, D) for body in events])

        with chromium() as browser:
            url = worker.web_url or ""
            sign_in(browser, url, H, "anna")
            browser.get(url + "health")
            figures = until(
                browser,
                lambda: (
                    len(browser.find_elements(By.CSS_SELECTOR, "figure.reading")) == 2
                    and browser.find_elements(By.CSS_SELECTOR, "[data-device]")
                ),
            )
            pressure = browser.find_element(By.CSS_SELECTOR, "figure[data-measure=blood_pressure]")
            assert len(pressure.find_elements(By.CSS_SELECTOR, "polyline")) == 2  # sys. and dia.
            assert len(pressure.find_elements(By.CSS_SELECTOR, "circle")) == 28
            assert "14 readings" in pressure.find_element(By.TAG_NAME, "svg").get_attribute(
                "aria-label"
            )
            device_row = browser.find_element(By.CSS_SELECTOR, f"[data-device='{D}']").text
            assert "Online" in device_row and "76%" in device_row and figures
            shoot(browser, tmp_path, "health")

            browser.get(url + "reminders")
            summary = browser.find_element(By.CSS_SELECTOR, "#adherence .summary").text
            assert summary == "10 of 14 reminders taken (71%)."
            assert len(browser.find_elements(By.CSS_SELECTOR, "#adherence rect.taken")) == 28
            assert "08:00 · Morning pills (Ramipril)" in main_text(browser)
            shoot(browser, tmp_path, "reminders")

            # Larger text: one click, kept across pages.
            size = "return parseFloat(getComputedStyle(document.documentElement).fontSize);"
            normal = browser.execute_script(size)
            browser.find_element(By.ID, "large-text").click()
            assert browser.execute_script(size) >= normal * 1.3
            browser.get(url + "health")
            assert browser.execute_script(size) >= normal * 1.3
            assert browser.find_element(By.ID, "large-text").get_attribute("aria-pressed") == "true"
            shoot(browser, tmp_path, "large-text")
            browser.find_element(By.ID, "large-text").click()
            assert browser.execute_script(size) == normal

            # The keyboard alone: the first Tab offers the skip link, then on to the menu.
            browser.get(url)
            body = browser.find_element(By.TAG_NAME, "body")
            body.send_keys(Keys.TAB)
            active = "return document.activeElement.textContent.trim();"
            assert browser.execute_script(active) == "Skip to the content"
            for _ in range(10):
                browser.switch_to.active_element.send_keys(Keys.TAB)
                if browser.execute_script(active) == "Reminders":
                    break
            assert browser.execute_script(active) == "Reminders"
            browser.switch_to.active_element.send_keys(Keys.ENTER)
            until(browser, lambda: browser.current_url.endswith("/reminders"))
            visible = "return getComputedStyle(document.activeElement).outlineStyle;"
            browser.switch_to.active_element.send_keys(Keys.TAB)
            assert browser.execute_script(visible) != "none"  # focus can be seen

        # A phone's screen: everything fits its width, nothing scrolls sideways.
        with chromium(PHONE) as small:
            sign_in(small, worker.web_url or "", H, "anna")
            width = "return [document.documentElement.scrollWidth, window.innerWidth];"
            for page in ("", "reminders", "health"):
                small.get((worker.web_url or "") + page)
                scroll, inner = small.execute_script(width)
                assert scroll <= inner, page
            small.get((worker.web_url or "") + "reminders")
            shoot(small, tmp_path, "phone")
    assert time.time() > 0


def alerts_listed(family) -> str:
    return family_cli(family, "alert", "list", "--household", H).stdout


def test_an_alert_that_came_while_the_live_stream_was_down_is_announced(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """The page's stream drops (its worker restarts); an alert arrives meanwhile, taken by
    the other worker. When the stream is back, the open page shows the alert and tells a
    screen reader that a new one has arrived."""
    family = two_households(tmp_path / "family", broker)
    web = FamilyWorker(family, name="1", web=f"127.0.0.1:{free_port()}")
    with device_standin(broker) as device, FamilyWorker(family, name="2"), chromium() as browser:
        web.start()
        try:
            url = web.web_url or ""
            sign_in(browser, url, H, "anna")
            mark(browser)
            assert "No open alerts" in main_text(browser)
            web.stop()
            alert = create(EmergencyAlert(trigger="sos_button"), H, D)
            device.send(alert)
            assert wait_for(lambda: alert.id in alerts_listed(family), 30)  # taken by worker 2
            web.start()
            until(
                browser,
                lambda: browser.find_elements(By.CSS_SELECTOR, f"[data-alert='{alert.id}']"),
            )
            until(browser, lambda: "A new alert has arrived" in text(browser, "#live"))
            assert not_reloaded(browser)

            # Down again, then a change that is no alert: shown, and that alert not told twice.
            browser.execute_script("document.getElementById('live').textContent = '';")
            refreshed = "return Number(document.body.dataset.refreshed || 0);"
            before = browser.execute_script(refreshed)
            web.stop()
            ok(family_cli(family, "reminder", "add", H, "walk", "--text", "Time for a walk",
                          "--at", "16:00"))  # fmt: skip
            web.start()
            until(browser, lambda: browser.execute_script(refreshed) > before)
            assert text(browser, "#live") == ""

            # Down, and meanwhile her sessions ended (a new password): the stream is refused
            # when it comes back, and the page goes to the sign-in form, not on as if live.
            web.stop()
            assert set_password(family, H, "anna", "a brand new secret").returncode == 0
            web.start()
            until(browser, lambda: browser.current_url.endswith("/login"))
        finally:
            web.stop()


def test_behind_a_proxy_the_page_is_kept_while_the_service_restarts(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """The console behind a reverse proxy: while its worker restarts, the proxy answers
    502 with a page of its own. The open page is kept (a reload would land on the proxy's
    page, which has no script and never comes back by itself), it asks again one request
    at a time every few seconds, and it shows the alert that came meanwhile once the
    worker is back."""
    family = two_households(tmp_path / "family", broker)
    port = free_port()
    web = FamilyWorker(family, name="1", web=f"127.0.0.1:{port}")
    with (
        device_standin(broker) as device,
        FamilyWorker(family, name="2"),
        ConsoleProxy(port) as proxy,
        chromium() as browser,
    ):
        web.start()
        try:
            sign_in(browser, proxy.url, H, "anna")
            mark(browser)
            web.stop()
            stopped = time.monotonic()
            alert = create(EmergencyAlert(trigger="sos_button"), H, D)
            device.send(alert)
            assert wait_for(lambda: alert.id in alerts_listed(family), 30)  # taken by worker 2
            assert wait_for(lambda: proxy.count("/", 502) >= 2, 20)  # asked again, and again
            time.sleep(6)
            assert not_reloaded(browser) and text(browser, "h1") == "Alerts"
            # one refetch every 5 s, and one each time the stream is tried (every 10 s):
            # not a request for each retry of each, piling up
            down = time.monotonic() - stopped
            assert proxy.count("/", 502) <= down / 5 + down / 10 + 2
            web.start()
            until(
                browser,
                lambda: browser.find_elements(By.CSS_SELECTOR, f"[data-alert='{alert.id}']"),
            )
            assert not_reloaded(browser)
        finally:
            web.stop()
