"""The Steward console (/ui) in a real browser: Debian's Chromium and chromedriver, driven by
Selenium, against `steward serve` and real MCP clients (the Python SDK).

Every wait is bounded. Screenshots go to the test's tmp dir (the run's artifacts); with
STEWARD_CONSOLE_SCREENSHOTS=DIR they are also copied there (docs/console for the docs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from e2e_helpers import (
    E2E_DIR,
    REPO_ROOT,
    Daemon,
    HttpTarget,
    bearer,
    client_argv,
    free_port,
    http_request,
    python,
    run_client,
    text_of,
    wait_for,
)

pytestmark = pytest.mark.steward

WAIT = 20.0  # seconds, for anything the browser waits for
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ISSUER = E2E_DIR / "servers" / "oidc_issuer.py"

HOLD_POLICY = """\
version: 1
default: allow
roles:
  "steward:approver": []
  "steward:viewer": []
detectors:
  builtin: true
rules:
  - id: console-destructive-needs-approval
    match: demo/run_command
    when: '"destructive-fs" in call.flags'
    effect: approve
    reason: destructive commands need an approver
    approvers: { roles: ["steward:approver"], mode: hold, hold_timeout: 3m }
approvals:
  mode: hold
  hold_timeout: 3m
"""

QUEUE_POLICY = HOLD_POLICY.replace("mode: hold, hold_timeout: 3m", "mode: queue").replace("  mode: hold\n", "  mode: queue\n")


# --------------------------------------------------------------------------- browser


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    for tool in (CHROMEDRIVER, CHROMIUM):
        if not Path(tool).exists():
            pytest.fail(f"{tool} is missing: install Debian's chromium and chromium-driver (scripts/test-all does)", pytrace=False)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        opts.add_argument(arg)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: webdriver.Chrome, tmp_path: Path, name: str) -> Path:
    """Saves a screenshot under the test's tmp dir (and STEWARD_CONSOLE_SCREENSHOTS, if set)."""
    out = tmp_path / "screenshots"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.png"
    driver.save_screenshot(str(path))
    extra = os.environ.get("STEWARD_CONSOLE_SCREENSHOTS")
    if extra:
        target = Path(extra) if Path(extra).is_absolute() else REPO_ROOT / extra
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)
    return path


def until(driver: webdriver.Chrome, what: str, cond: Any, timeout: float = WAIT) -> Any:
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: cond(d))
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; at {driver.current_url}:\n{driver.page_source[:3000]}") from None


def css(driver: webdriver.Chrome, selector: str) -> list:
    return driver.find_elements(By.CSS_SELECTOR, selector)


def sign_in_with_key(driver: webdriver.Chrome, base: str, key: str, next_path: str = "/ui/approvals") -> None:
    driver.get(f"{base}{next_path}")
    until(driver, "the sign-in form", lambda d: css(d, 'input[name="api_key"]'))
    assert "/ui/signin" in driver.current_url
    css(driver, 'input[name="api_key"]')[0].send_keys(key)
    css(driver, "#signin button[type=submit]")[0].click()
    until(driver, f"{next_path} after sign-in", lambda d: d.current_url.endswith(next_path) and css(d, "body[data-page]"))


def fetch_status(driver: webdriver.Chrome, path: str, body: str, headers: dict[str, str] | None = None) -> int:
    """POSTs from the page with the browser's cookies (as a script on the page could)."""
    return driver.execute_async_script(
        """
        const [path, body, headers, done] = arguments;
        fetch(path, {method: 'POST', credentials: 'same-origin', body: body,
                     headers: Object.assign({'Content-Type': 'application/x-www-form-urlencoded'}, headers)})
          .then(r => done(r.status), e => done(-1));
        """,
        path,
        body,
        headers or {},
    )


def approval_state(gw: Any, key: str, approval_id: str) -> str:
    r = http_request("GET", f"{gw.base}/v1/approvals/{approval_id}", headers=bearer(key))
    assert r.status == 200, r.body
    return r.json()["state"]


def pending_ids(gw: Any, key: str) -> list[str]:
    r = http_request("GET", f"{gw.base}/v1/approvals?state=pending", headers=bearer(key))
    assert r.status == 200, r.body
    return [a["id"] for a in r.json()["approvals"]]


def start_client(gw: Any, tmp_path: Path, calls: list[tuple[str, dict]], key: str | None, name: str, timeout: float = 150.0) -> subprocess.Popen:
    target = HttpTarget.of(gw.url("demo"), bearer(key) if key else None)
    argv = client_argv("py", target, calls, timeout=timeout)
    out = open(tmp_path / f"{name}.out", "wb")
    err = open(tmp_path / f"{name}.err", "wb")
    return subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=E2E_DIR)


def client_doc(proc: subprocess.Popen, tmp_path: Path, name: str, timeout: float) -> dict:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"client {name} did not finish in {timeout}s: {(tmp_path / f'{name}.err').read_text()[-3000:]}")
    text = (tmp_path / f"{name}.out").read_text()
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError(f"client {name} printed no JSON: {text[:2000]}\n{(tmp_path / f'{name}.err').read_text()[-3000:]}") from None


def keyed_gateway(gateway: Any, policy: str = HOLD_POLICY, **config: Any) -> Any:
    cfg = {"auth": {"api_keys": True}}
    cfg.update(config)
    return gateway(
        cfg,
        policy=policy,
        keys={
            "alice": [],
            "bob": ["steward:approver"],
            "victor": ["steward:viewer"],
        },
    )


# --------------------------------------------------------------------------- tests


def test_approve_a_held_call_in_the_browser(gateway, browser, tmp_path: Path) -> None:
    """Sign in with a key, see a call held by a real client appear without a reload, approve it
    with a reason, and the client gets the real result; the activity stream shows the decision
    and the approval, and a row opens its explanation."""
    gw = keyed_gateway(gateway)
    sign_in_with_key(browser, gw.base, gw.keys["bob"])
    assert css(browser, ".who .user")[0].text == "bob"
    assert not css(browser, "#pending [data-approval-id]")
    shot(browser, tmp_path, "approvals-empty")

    client = start_client(gw, tmp_path, [("run_command", {"command": "rm -rf /"})], gw.keys["alice"], "held")
    try:
        card = until(browser, "the held call to appear without a reload", lambda d: css(d, "#pending [data-approval-id]"))[0]
        approval_id = card.get_attribute("data-approval-id")
        assert approval_id.startswith("apr-")
        assert "alice" in card.find_element(By.CSS_SELECTOR, ".requester").text
        assert "demo/run_command" in card.text and "rm -rf /" in card.text
        assert "destructive commands need an approver" in card.text
        assert card.find_element(By.CSS_SELECTOR, ".progress .count").text == "0/1"
        shot(browser, tmp_path, "approvals-pending")
        card.find_element(By.CSS_SELECTOR, 'textarea[name="reason"]').send_keys("checked with alice: wiping the scratch box")
        card.find_element(By.CSS_SELECTOR, '[data-action="approve"]').click()
        until(browser, "the decision to be recorded", lambda d: css(d, "#done"))
        assert f"/ui/approvals/{approval_id}" in browser.current_url
        shot(browser, tmp_path, "approval-approved")

        doc = client_doc(client, tmp_path, "held", timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
    call = doc["calls"][0]
    assert call.get("isError") is not True, call
    assert "(simulated) $ rm -rf /" in text_of(call), call
    assert approval_state(gw, gw.keys["bob"], approval_id) in ("approved", "executed")

    # The activity stream: the decision and the approval's events, and a new row arrives live.
    browser.get(f"{gw.base}/ui/activity")
    until(browser, "activity rows", lambda d: css(d, "#rows tr[data-seq]"))
    rows = browser.find_element(By.ID, "rows").text
    assert "approve" in rows and "demo/run_command" in rows, rows
    assert "bob approved" in rows, rows
    until(browser, "the live stream to connect", lambda d: d.find_element(By.ID, "live").is_displayed())
    before = len(css(browser, "#rows tr[data-seq]"))
    ls = run_client("py", HttpTarget.of(gw.url("demo"), bearer(gw.keys["alice"])), [("run_command", {"command": "ls"})])
    assert ls["calls"][0].get("isError") is not True, ls
    until(browser, "the new call to stream in", lambda d: len(css(d, "#rows tr[data-seq]")) > before and "ls" in d.find_element(By.ID, "rows").text)
    shot(browser, tmp_path, "activity")

    decision = css(browser, "#rows tr.kind-decision.effect-approve")[0]
    decision.find_elements(By.TAG_NAME, "td")[2].click()
    until(browser, "the explanation", lambda d: css(d, "#explanation ol.steps li"))
    assert css(browser, "#decision")[0].text == "APPROVE"
    assert "console-destructive-needs-approval" in browser.find_element(By.ID, "explanation").text
    browser.execute_script("document.getElementById('explanation').scrollIntoView()")
    shot(browser, tmp_path, "activity-explained")

    browser.get(f"{gw.base}/ui")
    until(browser, "the overview", lambda d: css(d, "svg.chart"))
    shot(browser, tmp_path, "overview")


def test_viewer_sees_but_cannot_approve(gateway, browser, tmp_path: Path) -> None:
    gw = keyed_gateway(gateway, policy=QUEUE_POLICY)
    r = http_request(
        "POST",
        f"{gw.base}/v1/decide",
        body={"server": "demo", "tool": "run_command", "args": {"command": "rm -rf /"}},
        headers=bearer(gw.keys["alice"]),
    )
    assert r.status == 200 and r.json()["effect"] == "approve", r.body
    (approval_id,) = pending_ids(gw, gw.keys["bob"])
    # The link in refusals and webhooks opens the console page in a browser; scripts get JSON.
    r = http_request("GET", f"{gw.base}/v1/approvals/{approval_id}", headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status == 303 and r.headers["location"] == f"/ui/approvals/{approval_id}", (r.status, r.headers)
    assert approval_state(gw, gw.keys["victor"], approval_id) == "pending", "viewers read every approval"

    sign_in_with_key(browser, gw.base, gw.keys["victor"])
    card = until(browser, "the pending approval", lambda d: css(d, f'#pending [data-approval-id="{approval_id}"]'))[0]
    assert not card.find_elements(By.CSS_SELECTOR, '[data-action="approve"]'), "a viewer has no approve button"
    assert "steward:approver" in card.text
    shot(browser, tmp_path, "approvals-viewer")
    csrf = browser.find_element(By.TAG_NAME, "body").get_attribute("data-csrf")
    assert csrf
    # Even with a valid CSRF token, the store refuses the viewer.
    assert fetch_status(browser, f"/ui/approvals/{approval_id}/approve", f"csrf={csrf}&reason=yes") == 403
    assert approval_state(gw, gw.keys["bob"], approval_id) == "pending"


def test_requester_cannot_approve_their_own_call(gateway, browser, tmp_path: Path) -> None:
    gw = keyed_gateway(gateway, policy=QUEUE_POLICY.replace('roles: ["steward:approver"], ', ""))
    r = http_request(
        "POST",
        f"{gw.base}/v1/decide",
        body={"server": "demo", "tool": "run_command", "args": {"command": "rm -rf /tmp/x /"}},
        headers=bearer(gw.keys["bob"]),
    )
    assert r.status == 200 and r.json()["effect"] == "approve", r.body
    (approval_id,) = pending_ids(gw, gw.keys["bob"])

    sign_in_with_key(browser, gw.base, gw.keys["bob"], f"/ui/approvals/{approval_id}")
    card = until(browser, "the approval", lambda d: css(d, f'article[data-approval-id="{approval_id}"]'))[0]
    assert not card.find_elements(By.CSS_SELECTOR, '[data-action="approve"]'), "no approve button on one's own call"
    assert "cannot approve it" in card.text
    assert card.find_elements(By.CSS_SELECTOR, '[data-action="deny"]'), "the requester may withdraw"
    csrf = browser.find_element(By.TAG_NAME, "body").get_attribute("data-csrf")
    assert fetch_status(browser, f"/ui/approvals/{approval_id}/approve", f"csrf={csrf}&reason=mine") == 403
    assert approval_state(gw, gw.keys["bob"], approval_id) == "pending"
    shot(browser, tmp_path, "approval-own")


def test_posts_without_the_csrf_token_are_refused(gateway, browser, tmp_path: Path) -> None:
    gw = keyed_gateway(gateway, policy=QUEUE_POLICY)
    r = http_request(
        "POST",
        f"{gw.base}/v1/decide",
        body={"server": "demo", "tool": "run_command", "args": {"command": "rm -rf /"}},
        headers=bearer(gw.keys["alice"]),
    )
    assert r.status == 200, r.body
    (approval_id,) = pending_ids(gw, gw.keys["bob"])
    sign_in_with_key(browser, gw.base, gw.keys["bob"])
    until(browser, "the pending approval", lambda d: css(d, f'[data-approval-id="{approval_id}"] [data-action="approve"]'))
    base = f"/ui/approvals/{approval_id}/approve"
    assert fetch_status(browser, base, "reason=no+token") == 403
    assert fetch_status(browser, base, "csrf=forged&reason=wrong+token") == 403
    assert fetch_status(browser, f"/v1/approvals/{approval_id}/approve", "{}", {"Content-Type": "application/json"}) == 403
    assert fetch_status(browser, "/ui/servers/approve", "server=demo&tool=x&fingerprint=y") == 403
    assert fetch_status(browser, "/ui/signout", "") == 403
    # Without a session at all.
    r = http_request("POST", f"{gw.base}{base}", body=b"reason=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 403, r.body
    assert approval_state(gw, gw.keys["bob"], approval_id) == "pending"
    # With the page's token the same request goes through.
    csrf = browser.find_element(By.TAG_NAME, "body").get_attribute("data-csrf")
    assert fetch_status(browser, base, f"csrf={csrf}&reason=ok") in (200, 303)
    assert approval_state(gw, gw.keys["bob"], approval_id) == "approved"


def test_zero_config_demo_approved_in_the_browser(gateway, browser, tmp_path: Path) -> None:
    """`steward serve` with no config: a real client's `rm -rf /` on the demo needs approval, the
    local operator approves it on the approvals page, and the client's retry gets the result."""
    gw = gateway(None, extra_args=["--operator", "ops-lead"])
    calls = [("run_command", {"command": "rm -rf /"})]
    first = client_doc(start_client(gw, tmp_path, calls, None, "first", timeout=60), tmp_path, "first", 90)
    refusal = first["calls"][0]
    assert refusal.get("isError") is True, refusal
    text = text_of(refusal)
    assert "apr-" in text and "/ui/approvals/apr-" in text, text

    browser.get(f"{gw.base}/ui/approvals")
    card = until(browser, "the demo's pending approval", lambda d: css(d, "#pending [data-approval-id]"))[0]
    assert css(browser, ".who .user")[0].text == "ops-lead"
    assert "anonymous" in card.find_element(By.CSS_SELECTOR, ".requester").text
    shot(browser, tmp_path, "demo-pending")
    card.find_element(By.CSS_SELECTOR, 'textarea[name="reason"]').send_keys("demo: fine on the simulated shell")
    card.find_element(By.CSS_SELECTOR, '[data-action="approve"]').click()
    until(browser, "the decision to be recorded", lambda d: css(d, "#done"))

    retry = client_doc(start_client(gw, tmp_path, calls, None, "retry", timeout=60), tmp_path, "retry", 90)
    call = retry["calls"][0]
    assert call.get("isError") is not True, call
    assert "(simulated) $ rm -rf /" in text_of(call), call


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    users = {"carol": ["steward:viewer"], "dave": ["steward:approver"]}
    d = Daemon([python(), str(ISSUER), "--port", str(port), "--users", json.dumps(users)], tmp_path / "issuer.log")
    try:
        d.wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        d.kill()


def oidc_sign_in(driver: webdriver.Chrome, base: str, user: str) -> None:
    driver.get(f"{base}/ui/approvals")
    until(driver, "the sign-in page", lambda d: css(d, "#oidc"))
    css(driver, "#oidc")[0].click()
    until(driver, "the issuer's page", lambda d: css(d, f"#user-{user}"))
    css(driver, f"#user-{user}")[0].click()
    until(driver, "the console after sign-in", lambda d: d.current_url.endswith("/ui/approvals") and css(d, ".who .user"))
    assert css(driver, ".who .user")[0].text == user


def test_oidc_viewer_has_no_approve_button_and_forged_posts_fail(gateway, browser, issuer: str, tmp_path: Path) -> None:
    gw = gateway(
        {
            "auth": {
                "api_keys": True,
                "oidc": {"issuer": issuer, "audience": "steward-console", "principal_claim": "preferred_username", "roles_claim": "roles"},
            },
            "console": {"oidc": {"client_id": "steward-console"}},
        },
        policy=QUEUE_POLICY,
        keys={"alice": [], "bob": ["steward:approver"]},
    )
    r = http_request(
        "POST",
        f"{gw.base}/v1/decide",
        body={"server": "demo", "tool": "run_command", "args": {"command": "rm -rf /"}},
        headers=bearer(gw.keys["alice"]),
    )
    assert r.status == 200, r.body
    (approval_id,) = pending_ids(gw, gw.keys["bob"])

    oidc_sign_in(browser, gw.base, "carol")
    card = until(browser, "the pending approval", lambda d: css(d, f'#pending [data-approval-id="{approval_id}"]'))[0]
    assert not card.find_elements(By.CSS_SELECTOR, '[data-action="approve"]')
    shot(browser, tmp_path, "oidc-viewer")

    # A page of another origin posts a form to the gateway with carol's cookie: 403.
    browser.get(f"{issuer}/forge?action={gw.base}/ui/approvals/{approval_id}/approve&reason=forged")
    until(browser, "the attacker's page", lambda d: css(d, "#go"))
    css(browser, "#go")[0].click()
    until(browser, "the gateway's refusal", lambda d: "403" in d.title or css(d, "#error"))
    assert "403" in browser.page_source
    # And from the console's own origin without the token: 403 too.
    browser.get(f"{gw.base}/ui/approvals")
    assert fetch_status(browser, f"/ui/approvals/{approval_id}/approve", "reason=no+token") == 403
    assert approval_state(gw, gw.keys["bob"], approval_id) == "pending"

    # An approver from the same issuer can.
    csrf = browser.find_element(By.TAG_NAME, "body").get_attribute("data-csrf")
    assert fetch_status(browser, "/ui/signout", f"csrf={csrf}") in (200, 303)
    browser.delete_all_cookies()
    oidc_sign_in(browser, gw.base, "dave")
    card = until(browser, "the approve button", lambda d: css(d, f'[data-approval-id="{approval_id}"] [data-action="approve"]'))
    card[0].click()
    until(browser, "the decision", lambda d: css(d, "#done"))
    assert approval_state(gw, gw.keys["bob"], approval_id) == "approved"


def test_console_can_be_switched_off(gateway) -> None:
    gw = gateway({"auth": {"api_keys": True}, "console": {"enabled": False}}, keys={"bob": ["steward:approver"]})
    r = http_request("GET", f"{gw.base}/ui")
    assert r.status == 404, r.body
    r = http_request("GET", f"{gw.base}/v1/policy", headers=bearer(gw.keys["bob"]))
    assert r.status == 200 and "version" in r.json()


def test_pages_carry_a_strict_csp(gateway) -> None:
    gw = keyed_gateway(gateway)
    r = http_request("GET", f"{gw.base}/ui/signin")
    assert r.status == 200
    csp = r.headers.get("content-security-policy", "")
    for part in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"):
        assert part in csp, csp
    text = r.body.decode()
    assert 'name="api_key"' in text
    assert "<script>" not in text and " style=" not in text


def test_admin_reviews_a_drifted_tool(gateway, browser, tmp_path: Path) -> None:
    """A tool whose definition changed since it was pinned shows old and new side by side; an
    admin approves the offered version, a non-admin has no button."""
    import sqlite3

    gw = gateway({"auth": {"api_keys": True}}, keys={"root": ["steward:admin"], "bob": ["steward:approver"]})
    target = HttpTarget.of(gw.url("demo"), bearer(gw.keys["bob"]))
    first = run_client("py", target, [("lookup_order", {"id": "1"})])
    assert first["calls"][0].get("isError") is not True, first
    # Pretend the pinned (reviewed) definition of run_command said something else.
    with sqlite3.connect(gw.db_path, timeout=10) as db:
        (tool_json,) = db.execute("SELECT tool_json FROM tool_pins WHERE server = 'demo' AND tool = 'run_command'").fetchone()
        old = json.loads(tool_json)
        old["description"] = "Run a read-only command on the build host."
        db.execute(
            "UPDATE tool_pins SET fingerprint = ?, tool_json = ? WHERE server = 'demo' AND tool = 'run_command'",
            ("sha256:" + "0" * 64, json.dumps(old)),
        )
    run_client("py", target, [])  # lists the tools again: the drift is recorded
    with sqlite3.connect(gw.db_path, timeout=10) as db:
        (state,) = db.execute("SELECT state FROM tool_pins WHERE server = 'demo' AND tool = 'run_command'").fetchone()
    assert state == "drifted"

    sign_in_with_key(browser, gw.base, gw.keys["bob"], "/ui/servers")
    until(browser, "the drifted tool", lambda d: css(d, 'section.drift[data-tool="demo/run_command"]'))
    assert not css(browser, '[data-action="approve-pin"]'), "only admins approve pins"
    browser.delete_all_cookies()

    sign_in_with_key(browser, gw.base, gw.keys["root"], "/ui")
    alerts = until(browser, "the drift alert", lambda d: css(d, '[data-alert="drift"]'))
    assert "demo/run_command" in alerts[0].text
    browser.get(f"{gw.base}/ui/servers")
    drift = until(browser, "the drifted tool", lambda d: css(d, 'section.drift[data-tool="demo/run_command"]'))[0]
    assert "read-only" in drift.find_element(By.CSS_SELECTOR, "pre.old").text
    assert "simulated" in drift.find_element(By.CSS_SELECTOR, "pre.new").text
    browser.execute_script("arguments[0].scrollIntoView()", drift)
    shot(browser, tmp_path, "servers-drift")
    drift.find_element(By.CSS_SELECTOR, '[data-action="approve-pin"]').click()
    until(browser, "the pin approval", lambda d: css(d, "#done"))
    with sqlite3.connect(gw.db_path, timeout=10) as db:
        row = db.execute("SELECT state, source, approved_by FROM tool_pins WHERE server = 'demo' AND tool = 'run_command'").fetchone()
    assert row == ("pinned", "approved", "root"), row


def test_policy_page_explains_a_hypothetical_call(gateway, browser, tmp_path: Path) -> None:
    gw = keyed_gateway(gateway)
    sign_in_with_key(browser, gw.base, gw.keys["victor"], "/ui/policy")
    assert css(browser, '[data-rule="console-destructive-needs-approval"]')
    form = browser.find_element(By.ID, "explain")
    principal = form.find_element(By.NAME, "principal")
    principal.clear()
    principal.send_keys("alice")
    args = form.find_element(By.NAME, "args")
    args.clear()
    args.send_keys('{"command": "rm -rf /"}')
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    until(browser, "the explanation", lambda d: css(d, "#explanation ol.steps li"))
    assert css(browser, "#decision")[0].text == "APPROVE"
    assert "console-destructive-needs-approval" in browser.find_element(By.ID, "explanation").text
    browser.execute_script("document.getElementById('explain').scrollIntoView()")
    shot(browser, tmp_path, "policy-explain")
    # Nothing ran and nothing was recorded.
    r = http_request("GET", f"{gw.base}/v1/activity?kind=decision", headers=bearer(gw.keys["victor"]))
    assert r.status == 200 and r.json()["rows"] == [], r.body
