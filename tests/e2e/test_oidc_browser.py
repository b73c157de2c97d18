"""Signing in with the city's identity provider in a real browser: headless Debian
chromium (Playwright with ``executable_path``; nothing downloads a browser) opens the
counter app (a process, OpenID Connect on) -> the sign-in page -> its provider button ->
Keycloak's own login page (a real Keycloak, tests/keycloak_support.py) -> back on the
counter screen, signed in. No Kafka: the read model is filled by the sink's own code
(tests/integration/counter_oidc_support.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.support import chromium, chromium_path, new_context
from tests.integration.counter_oidc_support import CASE, OidcCounter, running_counter
from tests.keycloak_support import LocalKeycloak, password_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(chromium_path() is None, reason="needs Debian's chromium"),
]

TIMEOUT = 30_000  # ms: Keycloak's first login page compiles its templates


@pytest.fixture(scope="module")
def app(keycloak: LocalKeycloak, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[OidcCounter]:
    with running_counter(keycloak, tmp_path_factory.mktemp("oidc-browser")) as running:
        yield running


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium() as browser:
        context = new_context(browser)
        context.set_default_timeout(TIMEOUT)
        try:
            yield context.new_page()
        finally:
            context.close()


def session_of(page: Page) -> dict[str, Any]:
    """``GET /api/session`` from the page itself (its cookies): status and body."""
    return dict(page.evaluate("""async () => {
        const r = await fetch("/api/session", { headers: { Accept: "application/json" } });
        return { status: r.status, body: r.ok ? await r.json() : null };
    }"""))


def test_a_clerk_signs_in_through_keycloak(page: Page, app: OidcCounter,
                                           keycloak: LocalKeycloak) -> None:
    page.goto(f"{app.base}/")
    page.wait_for_url(re.compile(r"/login\?next=%2F$"))
    assert session_of(page)["status"] == 401

    button = page.locator("#oidc-btn")  # shown once /auth/config says oidc
    expect(button).to_be_visible()
    assert button.get_attribute("href") == "/auth/oidc/login?next=%2F"
    button.click()

    page.wait_for_url(f"{keycloak.issuer}/protocol/openid-connect/auth?**")
    page.locator("#username").fill("clerk1")
    page.locator("#password").fill(password_of("clerk1"))
    page.locator("#kc-login").click()

    page.wait_for_url(f"{app.base}/")
    expect(page.locator("#who-name")).to_have_text("clerk1")
    s = session_of(page)
    assert s["status"] == 200
    assert s["body"]["name"] == "clerk1" and s["body"]["source"] == "oidc"
    assert s["body"]["subject"].startswith(keycloak.issuer + "#")
    assert s["body"]["roles"] == ["clerk"]
    cookies = {c["name"]: c for c in page.context.cookies(app.base)}
    assert cookies["onewindow_session"]["httpOnly"]
    assert cookies["onewindow_session"]["sameSite"] == "Lax"

    # the clerk's screen works with that session: the case by number
    card = page.evaluate(f"""async () => (await fetch("/api/cases/{CASE}")).status""")
    assert card == 200


def test_the_provider_sends_an_auditor_on_to_the_page_asked_for(
        page: Page, app: OidcCounter, keycloak: LocalKeycloak) -> None:
    page.goto(f"{app.base}/audit")
    page.wait_for_url(re.compile(r"/login\?next=%2Faudit$"))
    page.locator("#oidc-btn").click()
    page.wait_for_url(f"{keycloak.issuer}/protocol/openid-connect/auth?**")
    page.locator("#username").fill("audit1")
    page.locator("#password").fill(password_of("audit1"))
    page.locator("#kc-login").click()
    page.wait_for_url(f"{app.base}/audit")
    expect(page.locator("#who-name")).to_have_text("audit1")
    assert session_of(page)["body"]["roles"] == ["auditor"]
