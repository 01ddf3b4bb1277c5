"""What the page shows while and around asking (issue 13, item 7): feedback at once, the length limit
shown and enforced, a plain message for an over-long question, and "New conversation"."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ui.conftest import ask, choose_dataset

pytestmark = [pytest.mark.browser, pytest.mark.bwrap]

QUESTION = "How many orders are there per status?"
# Records, on every change of the chat, who wrote its last message: the page must never rest on the
# user's question alone (the old page showed only the question until the first stage arrived).
WATCH_CHAT = """() => {
  window.__lastAuthors = [];
  const chat = document.querySelector('#chat');
  new MutationObserver(() => {
    const rows = chat.querySelectorAll('[data-testid="user"], [data-testid="bot"]');
    window.__lastAuthors.push(rows.length ? rows[rows.length - 1].getAttribute('data-testid') : 'none');
  }).observe(chat, {subtree: true, childList: true, characterData: true});
}"""


def test_asking_shows_feedback_at_once_and_ends_with_done(page: Any) -> None:
    from playwright.sync_api import expect

    choose_dataset(page, "ecommerce")
    page.evaluate(WATCH_CHAT)
    ask(page, QUESTION)
    chat = page.locator("#chat")
    expect(chat.locator("table.result-table")).to_have_count(1)
    expect(chat.get_by_text("Done", exact=True)).to_have_count(1)
    authors: list[str] = page.evaluate("window.__lastAuthors")
    assert "user" not in authors, authors  # the question always came with a pending stage under it
    assert authors and authors[-1] == "bot"


def test_question_length_is_limited_with_a_plain_message(page: Any) -> None:
    from playwright.sync_api import expect

    choose_dataset(page, "ecommerce")
    box = page.locator("#question textarea")
    expect(box).to_have_attribute("placeholder", re.compile("up to 2,000 characters"))
    box.fill("x" * 2001)
    assert len(box.input_value()) == 2000  # the textbox stops at the limit

    # Pasted in some other way (a script, an old browser), 2,001 characters get a plain message.
    box.evaluate("(el) => { el.value = 'how many orders '.padEnd(2001, '?'); "
                 "el.dispatchEvent(new Event('input', {bubbles: true})); }")
    assert len(box.input_value()) == 2001
    page.locator("#ask-button").click()
    chat = page.locator("#chat")
    expect(chat).to_contain_text("This question is 2,001 characters long; questions are limited to 2,000.")
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)  # no red badges or toasts
    expect(page.locator(".toast-body")).to_have_count(0)
    expect(chat.locator("table.result-table")).to_have_count(0)

    ask(page, QUESTION)  # the page still works
    expect(chat.locator("table.result-table")).to_have_count(1)


def test_new_conversation_clears_the_thread(page: Any) -> None:
    from playwright.sync_api import expect

    choose_dataset(page, "ecommerce")
    chat = page.locator("#chat")
    ask(page, QUESTION)
    expect(chat.locator("table.result-table")).to_have_count(1)
    footer = page.locator("#footer")
    expect(footer).to_contain_text(re.compile(r"Runner mode: (bwrap|cache)"))

    page.locator("#new-conversation").click()
    expect(chat.locator("[data-testid=user], [data-testid=bot]")).to_have_count(0)
    expect(footer).not_to_contain_text("Runner mode:")

    ask(page, QUESTION)
    expect(chat.locator("table.result-table")).to_have_count(1)
    details = chat.locator("details.answer-details")
    details.locator("summary").click()
    text = details.inner_text()
    run_id = re.search(r"Run id\s+(r[0-9a-f]+)", text)
    thread = re.search(r"Thread\s+(r[0-9a-f]+)", text)
    assert run_id and thread, text
    assert thread.group(1) == run_id.group(1), "the answer after New conversation did not start a new thread"
