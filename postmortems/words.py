"""How long a postmortem is, against the 400–600 word target.

A postmortem that is too short leaves readers guessing; one that is too long is not read. The
target is advice: a postmortem outside it can still be saved, and its reviewers see a warning.

What counts: the issue summary (impact and root cause in brief), the timeline texts, the root
cause, the resolution, the corrective and preventative measures and the action items' titles.
A word is a run of characters between white space with at least one letter or digit in it, so
Markdown marks ("-", "#", "**", "|") alone are not words. `static/oncall/postmortem.js` counts
the same way in the browser (a regular expression of the same meaning), so the live count on
the edit page and the one the server reports agree.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

WORD_TARGET = (400, 600)

_TOKEN = re.compile(r"\S+")
# Python's \w is Unicode letters, digits and "_": without "_", a letter or digit of any script.
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")

# The postmortem's text fields that count, in the order of the page.
COUNTED_FIELDS = ("impact", "summary_root_cause", "root_cause", "resolution", "improvements")


def count_words(*texts: str | None) -> int:
    """Words in the given texts together (None and "" count nothing)."""
    total = 0
    for text in texts:
        if not text:
            continue
        total += sum(1 for token in _TOKEN.findall(text) if _LETTER_OR_DIGIT.search(token))
    return total


def word_count(postmortem) -> int:
    """Words of a saved postmortem: its counted fields, timeline texts and action item titles.
    Reads `timeline_items` and `action_items` through the related managers, so prefetch them
    when counting many postmortems."""
    return count_words(
        *(getattr(postmortem, name) for name in COUNTED_FIELDS),
        *(item.text for item in postmortem.timeline_items.all()),
        *(item.title for item in postmortem.action_items.all()),
    )


@dataclass(frozen=True)
class WordCheck:
    """A count judged against the target: what to show and whether to warn."""

    count: int
    state: str  # "below", "within" or "above"

    @property
    def within(self) -> bool:
        return self.state == "within"

    @property
    def message(self) -> str:
        low, high = WORD_TARGET
        words = "word" if self.count == 1 else "words"
        if self.state == "below":
            return f"{self.count} {words} — below the {low}-word target"
        if self.state == "above":
            return f"{self.count} {words} — above the {high}-word target"
        return f"{self.count} {words} — within the {low}–{high} target"


def check_words(count: int) -> WordCheck:
    low, high = WORD_TARGET
    if count < low:
        return WordCheck(count=count, state="below")
    if count > high:
        return WordCheck(count=count, state="above")
    return WordCheck(count=count, state="within")


def check_texts(texts: Iterable[str | None]) -> WordCheck:
    return check_words(count_words(*texts))
