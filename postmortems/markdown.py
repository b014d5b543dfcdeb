"""Markdown for postmortems: what authors write, rendered to HTML that is safe to show anyone.

Two layers, so one mistake does not open a hole:

1. Python-Markdown runs with its raw-HTML handling switched off: `<script>`, `<iframe>` or
   `<b onclick=…>` typed into a postmortem come out as visible text, not markup.
2. The HTML it produces is cleaned again by nh3 with a short allowlist of tags and attributes:
   no scripts, no event handlers, no styles, links only to http(s), mailto or the portal itself.

Images are not rendered (`![alt](url)` stays as typed): a postmortem page loads nothing from
outside the portal. Headings typed by the author start at level 3, under the page's section
headings (`#` → `<h3>`).
"""

import xml.etree.ElementTree as etree

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

ALLOWED_TAGS = {
    "a",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "td": {"align"},
    "th": {"align"},
}
# Relative links (to another page of the portal) are kept too.
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}
# The page's own sections are <h2>; the author's headings sit below them.
HEADING_SHIFT = 2


class _ShiftHeadings(Treeprocessor):
    """`# Title` → `<h3>`, `## Sub` → `<h4>` …, never deeper than `<h6>`."""

    def run(self, root: etree.Element) -> None:
        for element in root.iter():
            tag = element.tag
            if isinstance(tag, str) and len(tag) == 2 and tag[0] == "h" and tag[1].isdigit():
                element.tag = f"h{min(int(tag[1]) + HEADING_SHIFT, 6)}"


class _SafeMarkdown(Extension):
    """Raw HTML is text, images are links, headings shift down."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 (Markdown's API)
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        # An image stays as its Markdown text: nothing is fetched from outside the portal.
        md.inlinePatterns.deregister("image_link")
        md.inlinePatterns.deregister("image_reference")
        md.inlinePatterns.deregister("short_image_ref")
        md.treeprocessors.register(_ShiftHeadings(md), "shift_headings", 5)


def _converter() -> markdown.Markdown:
    return markdown.Markdown(
        extensions=[
            "fenced_code",
            "sane_lists",
            "tables",
            _SafeMarkdown(),
        ],
        extension_configs={"tables": {"use_align_attribute": True}},
        output_format="html",
    )


def sanitize_html(html: str) -> str:
    """Keep only the allowlisted tags and attributes; links get rel="noopener noreferrer
    nofollow" and lose any scheme other than http(s) and mailto."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def render_markdown(text: str | None) -> SafeString:
    """The author's Markdown as sanitised HTML, ready for a template (empty text → "")."""
    if not text or not text.strip():
        return mark_safe("")
    html = _converter().convert(text)
    return mark_safe(sanitize_html(html))  # noqa: S308 (cleaned by nh3 just above)
