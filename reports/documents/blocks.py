"""The building blocks a document's sections are made of, drawn by reports/blocks.html.

A section is a list of blocks: ``facts`` (term, value pairs), ``table`` (header and rows; numbers
right-aligned), ``figure`` (an SVG from governance.charts, inline: vector in the PDF), ``text``.
"""

from django.utils.safestring import mark_safe

from ..pdf import ReportMetadata
from ..rules.documents import TITLES, DocumentKind


def facts(*pairs, title=""):
    return {"type": "facts", "title": title, "pairs": [(k, v) for k, v in pairs if v not in (None, "")]}


def table(header, rows, *, title="", numeric=(), dense=False):
    return {"type": "table", "title": title, "header": header, "rows": rows, "numeric": set(numeric),
            "dense": dense}


def figure(svg, caption):
    return {"type": "figure", "svg": mark_safe(svg), "caption": caption}  # noqa: S308 — governance.charts escapes every text


def text(body, *, title=""):
    return {"type": "text", "title": title, "body": body}


def num(value, digits=4):
    if value is None:
        return "undefined"
    if isinstance(value, float):
        if value and abs(value) < 10 ** -digits:
            return f"{value:.3g}"  # an additivity error of 4e-08 is not 0.0000
        return f"{value:.{digits}f}"
    return str(value)


def metadata_for(kind: DocumentKind, *, title: str, subject: str, custos_ids, author: str) -> ReportMetadata:
    return ReportMetadata(title=title, author=author, subject=f"{TITLES[kind]}: {subject}",
                          custos_ids=tuple(custos_ids), keywords=(TITLES[kind].split(" (")[0],))
