"""The word count and its 400–600 target (pure functions, no database)."""

from hypothesis import given
from hypothesis import strategies as st

from postmortems.words import WORD_TARGET, check_texts, check_words, count_words


def test_words_are_runs_between_white_space():
    assert count_words("The checkout API returned 503 for 12 minutes.") == 8
    assert count_words("one\ntwo\tthree   four") == 4


def test_markdown_marks_alone_are_not_words():
    text = "# Impact\n\n- **Checkout** was down\n- 40 % of users\n\n| a | b |\n|---|---|\n---"
    # Impact, Checkout, was, down, 40, of, users, a, b
    assert count_words(text) == 9


def test_any_script_counts():
    assert count_words("Zahlungsdienst ausgefallen, 東京 リージョン, café") == 5


def test_several_texts_add_up_and_empty_ones_count_nothing():
    assert count_words("two words", None, "", "and three more") == 5


def test_the_target_messages_say_where_the_count_stands():
    low, high = WORD_TARGET
    assert (low, high) == (400, 600)
    assert check_words(512).message == "512 words — within the 400–600 target"
    assert check_words(512).within
    assert check_words(320).message == "320 words — below the 400-word target"
    assert not check_words(320).within
    assert check_words(601).message == "601 words — above the 600-word target"
    assert check_words(1).message == "1 word — below the 400-word target"
    assert check_words(400).within and check_words(600).within
    assert check_words(399).state == "below"


def test_check_texts_counts_then_judges():
    assert check_texts(["word " * 450]).state == "within"


words = st.text(alphabet=st.characters(categories=["L", "N", "P", "Zs"]), max_size=80)


@given(words, words)
def test_counting_two_texts_joined_by_a_space_is_the_sum(left, right):
    assert count_words(left + " " + right) == count_words(left) + count_words(right)


@given(words)
def test_the_count_never_exceeds_the_tokens(text):
    assert 0 <= count_words(text) <= len(text.split())
