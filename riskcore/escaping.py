"""Text that came from data or from a person, made inert in each kind of output: one function per kind.

- `html_text`: HTML text and quoted attribute values (regulatory report, values shown in GX Data Docs).
- `markdown_text`, `markdown_code`: Markdown (model card): no HTML, no link or image, no table
  break, no new block (heading, list, quote) started by a value.
- `slack_text`, `slack_link`: Slack-style `mrkdwn` alerts: no link, mention or channel ping of
  the value's own; a link only to an http(s) URL.
- `script_json`, `evidently_html`: JSON inside an HTML `<script>` element (the Evidently page
  embeds its data so): a value cannot close the element; the data the page's script reads is
  unchanged.
"""

from __future__ import annotations

import html
import json
import re
from urllib.parse import quote, urlsplit

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`\[\]])")
# What starts a block when a value begins a line or a list item: heading, quote, list, rule (backtick and | are escaped anyway).
_MARKDOWN_BLOCK_START = re.compile(r"^([#>+\-*=_~]|\d+[.)])")
_MARKDOWN_CODE_SAFE = re.compile(r"[A-Za-z0-9_.:/@+=,-]+")
# What GFM-style renderers turn into a link without brackets: `scheme://...` and `www.`.
_MARKDOWN_AUTOLINK = re.compile(r"(?<=[A-Za-z0-9])(:)(?=//)|(?<![A-Za-z0-9])([Ww]{3})(\.)")


def html_text(value: object) -> str:
    """`str(value)` for HTML text or a quoted attribute: `& < > " '` as character references."""
    return html.escape(str(value), quote=True)


def markdown_text(text: object) -> str:
    """Text made inert in Markdown (CommonMark/GFM): whitespace runs (newlines included) become one
    space, so no value starts a block of its own; `& < >` as character references, so no raw HTML
    or autolink; backslash, backtick and square brackets escaped, so no link, image
    (`[x](javascript:...)`, `![x](http://...)`), reference or code span; `://` and `www.` escaped,
    so no bare URL becomes a link; `|` escaped, so no table cell break; a leading block marker
    (`#`, `>`, `-`, `1.`, ...) escaped. Rendered, the text reads as it was typed."""
    text = " ".join(str(text).split())
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(text, quote=False)).replace("|", "\\|")
    text = _MARKDOWN_AUTOLINK.sub(lambda m: "\\:" if m.group(1) else m.group(2) + "\\.", text)
    return _MARKDOWN_BLOCK_START.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], text)


def markdown_code(text: object) -> str:
    """An identifier (run id, digest, version, label) as a code span when it is made of identifier
    characters only; anything else as `markdown_text` (inside a code span, escapes would show)."""
    text = str(text)
    return f"`{text}`" if _MARKDOWN_CODE_SAFE.fullmatch(text) else markdown_text(text)


def slack_text(text: object) -> str:
    """Slack's three control characters as its entities: no `<url|label>`, `<!channel>` or `<@user>`
    of the text's own (and, as a side effect, no HTML for clients that render it)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_link(url: str, label: str) -> str:
    """`<url|label>` for an http(s) URL; any other URL (`javascript:`, `data:`, ...) is not linked:
    the label and the URL are shown as text. Characters that would end or split the link are
    percent-encoded in the URL."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return slack_text(f"{label} ({url})")
    safe_url = quote(url, safe="/:?#[]@!$&'()*+,;=%~")  # encodes space, | < > " and the rest
    return f"<{slack_text(safe_url)}|{slack_text(label)}>"


def script_json(json_text: str) -> str:
    """JSON text made safe inside an HTML `<script>` element: `< > &` (and U+2028/U+2029) occur
    only inside JSON strings, where their `\\uXXXX` escapes decode to the same value, so no
    `</script>` or `<!--` can end or change the element."""
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        json_text = json_text.replace(char, escape)
    return json_text


_EVIDENTLY_DATA = re.compile(r"<script>\s*var (?P<id>[A-Za-z_$][\w$]*) = ")


def evidently_html(page: str) -> str:
    """An Evidently report page (`Snapshot.get_html_str(as_iframe=False)`, Evidently 0.7) with its
    data block made safe: Evidently writes `var <id> = <json>; var additional_graphs_<id> = <json>;`
    into a `<script>` element without escaping, so a category or column name holding
    `</script>` ended the element and the rest of the data became live HTML. Each JSON document is
    located by parsing it (not by searching for the end of the element), and re-escaped with
    `script_json`. Raises when the page does not have that shape, rather than pass it on unsafe."""
    start = _EVIDENTLY_DATA.search(page)
    if start is None:
        raise ValueError("not an Evidently report page: no embedded data block")
    decoder = json.JSONDecoder()
    parts, position = [page[: start.end()]], start.end()
    for following in (re.compile(rf";\s*var additional_graphs_{re.escape(start['id'])} = "), re.compile(r";\s*</script>")):
        _, end = decoder.raw_decode(page, position)
        parts.append(script_json(page[position:end]))
        after = following.match(page, end)
        if after is None:
            raise ValueError("not an Evidently report page: unexpected data block layout")
        parts.append(after.group(0))
        position = after.end()
    parts.append(page[position:])
    return "".join(parts)
