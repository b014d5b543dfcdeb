"""What an author's Markdown becomes on the page: formatting kept, anything active removed."""

import pytest
from django.utils.safestring import SafeString

from postmortems.markdown import render_markdown, sanitize_html


def test_formatting_an_author_uses_is_kept():
    html = render_markdown(
        "Checkout was **down** for *12 minutes*.\n\n"
        "- patch `nginx`\n- add [monitoring](https://grafana.example.com/d/mem)\n\n"
        "> quoted from the customer\n\n"
        "```\nSELECT 1;\n```\n"
    )
    assert isinstance(html, SafeString)
    assert "<strong>down</strong>" in html
    assert "<em>12 minutes</em>" in html
    assert "<li>patch <code>nginx</code></li>" in html
    assert '<a href="https://grafana.example.com/d/mem" rel="noopener noreferrer nofollow">' in html
    assert "<blockquote>" in html
    assert "<pre><code>SELECT 1;" in html


def test_tables_and_numbered_lists_keep_their_shape():
    html = render_markdown("| step | minutes |\n|:--|--:|\n| detect | 4 |\n\n3. third\n4. fourth")
    assert '<th align="right">minutes</th>' in html
    assert '<td align="left">detect</td>' in html
    assert '<ol start="3">' in html


def test_headings_sit_below_the_page_sections():
    html = render_markdown("# Big\n\n## Smaller\n\n###### Tiny")
    assert "<h3>Big</h3>" in html
    assert "<h4>Smaller</h4>" in html
    assert "<h6>Tiny</h6>" in html
    assert "<h1" not in html and "<h2" not in html


def test_a_script_tag_is_shown_as_text_never_run():
    html = render_markdown("Before <script>alert('x')</script> after")
    assert "<script" not in html
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in html


def test_a_script_block_on_its_own_line_is_text_too():
    html = render_markdown("<script>\ndocument.cookie\n</script>")
    assert "<script" not in html
    assert "&lt;script&gt;" in html


def test_event_handlers_never_reach_the_page():
    html = render_markdown('<img src="x" onerror="alert(1)"> and <b onclick="steal()">bold</b>')
    assert "<img" not in html
    assert "<b " not in html
    # the text is visible as typed, escaped: no tag carries the handler
    assert '&lt;img src="x" onerror="alert(1)"&gt;' in html


@pytest.mark.parametrize(
    "link",
    [
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click]( javascript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        "[click](vbscript:msgbox(1))",
    ],
)
def test_links_with_a_dangerous_scheme_lose_their_target(link):
    html = render_markdown(link)
    assert "click" in html
    assert "href" not in html
    assert "javascript" not in html.lower()


def test_ordinary_and_portal_links_stay():
    html = render_markdown(
        "[incident](/incidents/42/) · <https://status.example.com> · [mail](mailto:sre@example.com)"
    )
    assert 'href="/incidents/42/"' in html
    assert 'href="https://status.example.com"' in html
    assert 'href="mailto:sre@example.com"' in html


def test_an_iframe_is_text():
    html = render_markdown('<iframe src="https://evil.example.com"></iframe>')
    assert "<iframe" not in html
    assert "&lt;iframe" in html


def test_raw_html_blocks_are_escaped_not_interpreted():
    html = render_markdown('<div style="position:fixed" class="x">overlay</div>\n\nText')
    assert "<div" not in html
    assert "style=" not in html.replace("&lt;div style=", "")
    assert "<p>Text</p>" in html


def test_images_are_not_loaded_from_anywhere():
    html = render_markdown("![graph](https://tracker.example.com/pixel.png)")
    assert "<img" not in html
    assert "pixel.png" in html  # left as the author typed it


def test_code_keeps_angle_brackets_visible():
    html = render_markdown("Run `<kill -9>` then\n\n```html\n<b onmouseover=x>hi</b>\n```")
    assert "<code>&lt;kill -9&gt;</code>" in html
    assert "&lt;b onmouseover=x&gt;hi&lt;/b&gt;" in html
    assert "<b " not in html


def test_empty_text_renders_nothing():
    assert render_markdown("") == ""
    assert render_markdown(None) == ""
    assert render_markdown("   \n") == ""


def test_the_sanitiser_alone_strips_what_markdown_might_let_through():
    """Defence in depth: even HTML that did not come from Markdown is cleaned."""
    dirty = (
        '<p onclick="x">hi<script>alert(1)</script><iframe src="//evil"></iframe>'
        '<a href="javascript:alert(1)">a</a><a href="https://ok.example">b</a>'
        "<img src=x onerror=alert(1)><style>body{display:none}</style></p>"
    )
    clean = sanitize_html(dirty)
    assert clean == (
        '<p>hi<a rel="noopener noreferrer nofollow">a</a>'
        '<a href="https://ok.example" rel="noopener noreferrer nofollow">b</a></p>'
    )
