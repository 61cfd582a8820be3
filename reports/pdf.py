"""Render a Custos report as PDF/A-3b with its evidence attached: ``render_pdf(html, ...)``.

What a rendered report is:

- **PDF/A-3b**: WeasyPrint's ``pdf/a-3b`` variant (sRGB output intent, embedded font subsets,
  trailer /ID), with an XMP packet written here that identifies it (pdfaid:part 3,
  conformance B) and agrees with the document information: title, author, subject, keywords
  (the Custos ids the report is about, then any others), dates, document and instance ids.
- **Evidence as associated files**: each ``ReportAttachment`` is an embedded file with its
  declared media type, ``as_of`` as its dates and an MD5 checksum, behind a file specification
  with its ``/AFRelationship`` that the catalog lists once in ``/AF`` and in the sorted
  ``/EmbeddedFiles`` name tree. PDF/A-3, not -2: PDF/A-2 allows only PDF/A files as
  attachments, and WeasyPrint strips the others from a -2 file. The evidence bundle the
  offline verifier checks travels as ``evidence-bundle.json`` (``evidence_bundle_attachment``).
- **Byte-reproducible**: the same HTML, stylesheets, local resources, metadata, attachments
  and ``as_of``, rendered by the same stack (WeasyPrint, pydyf, Pango, HarfBuzz, zlib, and the
  font files: the base stylesheet uses only fonts-dejavu-core), give the same bytes in any
  process. Nothing reads the clock, the time zone, random numbers or the network: the dates
  are ``as_of`` (the time of the evidence, like SOURCE_DATE_EPOCH); the XMP document id and
  the first half of the trailer /ID derive from the SHA-256 of the inputs, the instance id
  from that and the renderer's versions (the XMP's CreatorTool names them), the /ID's second
  half is pydyf's MD5 of the objects written; WeasyPrint derives font subset tags from the fonts.
- **Strict**: a resource is fetched only from a ``data:`` URL or a file under ``base_url``
  (a report must not depend on what a server answers today, nor read files it was not
  meant to); anything else, and any error WeasyPrint logs (an unreadable image, a contents
  link to a missing anchor), fails the rendering with ``ReportRenderError``.

The HTML is the document writer's (``reports/base.html`` gives the print layout); WeasyPrint is
imported when ``render_pdf`` first runs, not with this module, so the documents and the admin
can use the types here and Django starts without loading Pango.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
import re
import threading
import uuid
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

from audit.pdf import EVIDENCE_BUNDLE_NAME, PDFError, embedded_files, pdfa3b_problems

PDF_VARIANT = "pdf/a-3b"
ATTACHMENT_SCHEME = "custos-attachment"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MEDIA_TYPE_RE = re.compile(r"^[a-z]+/[A-Za-z0-9][A-Za-z0-9.+-]*$")
_CUSTOS_ID_RE = re.compile(r"^[a-z_]+\.[a-z_]+:[^\s,]+$|^[a-z_]+:[^\s,]+$")  # a ledger subject
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_XMP_NAMESPACE = uuid.UUID("5d0c7e8f-1d0a-5b8e-9c61-7f2b8f0c1a11")  # Custos report ids


class ReportRenderError(Exception):
    """The report cannot be rendered as asked; the message says why."""


class Relationship(enum.StrEnum):
    """How an attached file relates to the report (the values PDF/A-3 allows for /AFRelationship)."""

    SOURCE = "Source"  # what the report was made from (the evidence bundle)
    DATA = "Data"  # the data behind its tables and charts (row-level CSV/JSON)
    ALTERNATIVE = "Alternative"  # the same content in another form
    SUPPLEMENT = "Supplement"  # more about it, for machines (a CycloneDX ML-BOM)
    UNSPECIFIED = "Unspecified"


@dataclass(frozen=True)
class ReportMetadata:
    """What a report says about itself: document information and XMP.

    CUSTOS_IDS are the ledger subjects it is about (``governance.modelversion:42``); they lead
    the keywords, so a reader finds them in the PDF's properties. No field may hold a data
    subject's identifier: metadata is read by every tool that opens the file.
    """

    title: str
    author: str
    subject: str
    custos_ids: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    lang: str = "en"

    def __post_init__(self):
        object.__setattr__(self, "custos_ids", tuple(self.custos_ids))
        object.__setattr__(self, "keywords", tuple(self.keywords))
        for label, value in (("title", self.title), ("author", self.author), ("subject", self.subject)):
            if not isinstance(value, str) or not value.strip() or _CONTROL_RE.search(value):
                raise ValueError(f"Report {label} must be one line of text, got {value!r}.")
        if not self.custos_ids:
            raise ValueError("A report names at least one Custos id it is about.")
        for custos_id in self.custos_ids:
            if not isinstance(custos_id, str) or not _CUSTOS_ID_RE.match(custos_id):
                raise ValueError(f"Custos ids look like 'app.model:id', got {custos_id!r}.")
        for keyword in self.keywords:
            if not isinstance(keyword, str) or not keyword.strip() or "," in keyword or _CONTROL_RE.search(keyword):
                raise ValueError(f"Keywords are one line of text without commas, got {keyword!r}.")
        if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", self.lang):
            raise ValueError(f"lang must be a BCP 47 tag, got {self.lang!r}.")

    @property
    def all_keywords(self) -> tuple[str, ...]:
        return self.custos_ids + self.keywords


@dataclass(frozen=True)
class ReportAttachment:
    """A file the report carries as a PDF/A-3 associated file."""

    name: str
    content: bytes
    media_type: str
    relationship: Relationship
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(f"Attachment names are ASCII letters, digits, '.', '_' and '-', got {self.name!r}.")
        if not isinstance(self.content, bytes):
            raise ValueError(f"Attachment {self.name} content must be bytes.")
        if not isinstance(self.media_type, str) or not _MEDIA_TYPE_RE.match(self.media_type):
            raise ValueError(
                f"Attachment {self.name} needs a media type like 'application/json', got {self.media_type!r}."
            )
        object.__setattr__(self, "relationship", Relationship(self.relationship))
        if not isinstance(self.description, str) or _CONTROL_RE.search(self.description):
            raise ValueError(f"Attachment {self.name} description must be one line of text.")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def evidence_bundle_attachment(bundle: dict) -> ReportAttachment:
    """The evidence bundle (``audit.selectors.evidence_bundle``) as the attachment the verifier checks.

    Serialised with sorted keys and a fixed indent, so the same bundle is the same bytes, and
    an auditor who opens the attachment can read it.
    """
    content = (json.dumps(bundle, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
    return ReportAttachment(
        name=EVIDENCE_BUNDLE_NAME,
        content=content,
        media_type="application/json",
        relationship=Relationship.SOURCE,
        description="Custos evidence bundle: verify with python -m audit.verifier --report THIS.pdf --key VKEY",
    )


def report_context(
    *, metadata: ReportMetadata, attachments: list[ReportAttachment], as_of: datetime, **context
) -> dict:
    """The template context ``reports/base.html`` expects, with CONTEXT (the document's own) added.

    AS_OF appears as ISO 8601 UTC to the second, the instant ``render_pdf`` dates the PDF with.
    """
    return {
        **context,
        "report": metadata,
        "attachments": sorted(attachments, key=lambda a: a.name),
        "as_of": _w3c(_utc_seconds(as_of)),
    }


def render_pdf(
    html: str,
    *,
    metadata: ReportMetadata,
    attachments: list[ReportAttachment],
    as_of: datetime,
    base_url: str | Path | None = None,
    stylesheets: tuple[str, ...] | list[str] = (),
) -> bytes:
    """Render HTML as a PDF/A-3b report carrying ATTACHMENTS; return its bytes.

    AS_OF (an aware datetime, taken to whole seconds in UTC) is the time of the evidence the
    report shows: it is the document's and each attachment's creation and modification date.
    STYLESHEETS are CSS texts applied after the HTML's own; relative URLs resolve against
    BASE_URL, a local directory, and only files under it can be read.
    """
    when = _utc_seconds(as_of)
    attachments = sorted(attachments, key=lambda a: a.name)  # the name tree must be sorted
    names = [a.name for a in attachments]
    if len(set(names)) != len(names):
        raise ValueError(f"Two attachments share a name: {sorted(n for n in names if names.count(n) > 1)}.")
    if not isinstance(html, str) or not all(isinstance(css, str) for css in stylesheets):
        raise TypeError("html and stylesheets are str.")
    if not isinstance(metadata, ReportMetadata) or not all(isinstance(a, ReportAttachment) for a in attachments):
        raise TypeError("metadata is a ReportMetadata and attachments are ReportAttachments.")
    stylesheets = tuple(stylesheets)

    # WeasyPrint loads only where a report is rendered (a worker), never with Django (see above).
    from weasyprint import CSS, HTML, Attachment
    from weasyprint.urls import FatalURLFetchingError

    resources = _fetchers()[0](base_url)
    with _weasyprint_errors() as errors:
        try:
            document = HTML(string=html, base_url=resources.base_url, url_fetcher=resources).render(
                stylesheets=[CSS(string=css, base_url=resources.base_url, url_fetcher=resources) for css in stylesheets]
            )
            linked = any(link[0] == "attachment" for page in document.pages for link in page.links)
            if document.metadata.attachments or linked:
                # WeasyPrint would embed them dated now: a report's attachments are ATTACHMENTS only.
                raise ReportRenderError("The HTML links attachments (rel=attachment); pass them as ReportAttachment.")
            digest = _inputs_digest(html, stylesheets, metadata, attachments, when, resources.served)
            _set_document_information(document.metadata, metadata, when)
            source = _fetchers()[1](attachments)
            pdf = document.write_pdf(
                pdf_variant=PDF_VARIANT,
                pdf_identifier=digest[:16].hex(),
                attachments=[
                    Attachment(
                        url=f"{ATTACHMENT_SCHEME}:{a.name}",
                        url_fetcher=source,
                        name=a.name,
                        description=a.description,
                        created=when,
                        modified=when,
                        relationship=a.relationship.value,
                    )
                    for a in attachments
                ],
                finisher=lambda _document, written: _finish(written, metadata, attachments, when, digest),
            )
        except FatalURLFetchingError as exc:
            raise ReportRenderError(f"{exc}: {exc.__cause__}") from exc
    if errors:
        raise ReportRenderError("WeasyPrint reported: " + "; ".join(errors))
    _check_written(pdf, attachments)
    return pdf


def renderer_versions() -> dict[str, str]:
    """The versions of what the bytes of a report depend on, besides its inputs and the fonts."""
    # the renderer's own versions, on a worker (see above)
    import pydyf
    import weasyprint
    from weasyprint.text.ffi import pango

    pango_version = pango.pango_version()
    return {
        "WeasyPrint": weasyprint.VERSION,
        "pydyf": pydyf.__version__,
        "Pango": f"{pango_version // 10000}.{pango_version // 100 % 100}.{pango_version % 100}",
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
    }


def _utc_seconds(as_of: datetime) -> datetime:
    if not isinstance(as_of, datetime) or as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError(f"as_of must be an aware datetime (UTC), got {as_of!r}.")
    # PDF dates carry whole seconds: the XMP says the same instant as the document information.
    return as_of.astimezone(timezone.utc).replace(microsecond=0)


def _w3c(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _creator_tool() -> str:
    return "Custos reports (" + ", ".join(f"{k} {v}" for k, v in renderer_versions().items()) + ")"


def _inputs_digest(html, stylesheets, metadata, attachments, when, served) -> bytes:
    """The SHA-256 of everything a report's bytes are made from (except the renderer's versions)."""
    record = {
        "html": hashlib.sha256(html.encode()).hexdigest(),
        "stylesheets": [hashlib.sha256(css.encode()).hexdigest() for css in stylesheets],
        "resources": sorted(served),
        "metadata": [metadata.title, metadata.author, metadata.subject, list(metadata.all_keywords), metadata.lang],
        "attachments": [[a.name, a.media_type, a.relationship.value, a.description, a.sha256] for a in attachments],
        "as_of": _w3c(when),
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).digest()


def _set_document_information(info, metadata: ReportMetadata, when: datetime) -> None:
    """Make WeasyPrint's document metadata ours: whatever the HTML's <head> said yields to METADATA."""
    info.title = metadata.title
    info.authors = [metadata.author]
    info.description = metadata.subject
    info.keywords = list(metadata.all_keywords)
    info.generator = _creator_tool()
    info.created = info.modified = _w3c(when)
    info.lang = metadata.lang
    info.custom = {}
    info.xmp_metadata = []


def _finish(pdf, metadata: ReportMetadata, attachments, when: datetime, digest: bytes) -> None:
    """Put right what WeasyPrint 70's PDF/A-3 writing leaves: /AF, relationships, XMP."""
    import pydyf  # WeasyPrint's writer: loaded with it, only where a report is rendered
    import weasyprint

    def obj(reference):
        return pdf.objects[int(reference.split()[0])]

    # Each file specification once in /AF, in name order (WeasyPrint lists each twice), with
    # the relationship declared for its name (WeasyPrint matches them by MD5 of the content,
    # which two attachments with the same bytes would share).
    relationship = {a.name: a.relationship.value for a in attachments}
    names = pdf.catalog.get("Names", {})
    specs = obj(names["EmbeddedFiles"])["Names"][1::2] if "EmbeddedFiles" in names else []
    for reference in specs:
        spec = obj(reference)
        spec["AFRelationship"] = f"/{relationship[spec['UF'].string]}"
    if specs:
        pdf.catalog["AF"] = pydyf.Array(specs)
    elif "AF" in pdf.catalog:
        del pdf.catalog["AF"]

    # The XMP packet: WeasyPrint's has no document or instance id, nor a metadata date.
    document_id = uuid.uuid5(_XMP_NAMESPACE, digest.hex())
    instance_id = uuid.uuid5(_XMP_NAMESPACE, digest.hex() + _creator_tool())
    packet = _xmp_packet(
        metadata,
        when,
        producer=f"WeasyPrint {weasyprint.VERSION}",  # what WeasyPrint writes as /Producer
        creator_tool=_creator_tool(),
        document_id=document_id,
        instance_id=instance_id,
    )
    stream = obj(pdf.catalog["Metadata"])
    # Uncompressed, so that a tool scanning the file for the XMP packet finds it.
    stream.stream, stream.compress = [packet], False


def _xmp_packet(metadata: ReportMetadata, when: datetime, *, producer, creator_tool, document_id, instance_id) -> bytes:
    """The XMP packet of a report: PDF/A-3b identification and what the document information says."""
    date = _w3c(when)

    def li(values):
        return "".join(f"<rdf:li>{escape(v)}</rdf:li>" for v in values)

    def alt(value):
        return f'<rdf:Alt><rdf:li xml:lang="x-default">{escape(value)}</rdf:li></rdf:Alt>'

    body = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about=""
 xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"
 xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:pdf="http://ns.adobe.com/pdf/1.3/"
 xmlns:xmp="http://ns.adobe.com/xap/1.0/"
 xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/">
<pdfaid:part>3</pdfaid:part>
<pdfaid:conformance>B</pdfaid:conformance>
<dc:format>application/pdf</dc:format>
<dc:title>{alt(metadata.title)}</dc:title>
<dc:creator><rdf:Seq>{li([metadata.author])}</rdf:Seq></dc:creator>
<dc:description>{alt(metadata.subject)}</dc:description>
<dc:subject><rdf:Bag>{li(metadata.all_keywords)}</rdf:Bag></dc:subject>
<dc:language><rdf:Bag>{li([metadata.lang])}</rdf:Bag></dc:language>
<pdf:Keywords>{escape(", ".join(metadata.all_keywords))}</pdf:Keywords>
<pdf:Producer>{escape(producer)}</pdf:Producer>
<xmp:CreatorTool>{escape(creator_tool)}</xmp:CreatorTool>
<xmp:CreateDate>{date}</xmp:CreateDate>
<xmp:ModifyDate>{date}</xmp:ModifyDate>
<xmp:MetadataDate>{date}</xmp:MetadataDate>
<xmpMM:DocumentID>uuid:{document_id}</xmpMM:DocumentID>
<xmpMM:InstanceID>uuid:{instance_id}</xmpMM:InstanceID>
</rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>"""
    return body.encode()


def _check_written(pdf: bytes, attachments) -> None:
    """Read the PDF back as the offline verifier will, and refuse it unless it is what it claims.

    A later WeasyPrint could change how it writes PDF/A-3 files: better to fail a rendering
    than to issue a report whose evidence the verifier cannot find.
    """
    problems = pdfa3b_problems(pdf)
    try:
        carried = {f.name: f.sha256 for f in embedded_files(pdf)}
    except PDFError as exc:
        problems.append(str(exc))
        carried = None
    if carried is not None and carried != {a.name: a.sha256 for a in attachments}:
        problems.append("the PDF does not carry exactly the attachments given")
    if problems:
        raise ReportRenderError("The rendered PDF is not a PDF/A-3b report: " + "; ".join(problems))


@contextmanager
def _weasyprint_errors():
    """Collect the errors WeasyPrint logs in this thread while the block runs."""
    errors: list[str] = []
    thread = threading.get_ident()

    class Collect(logging.Handler):
        def emit(self, record):
            if record.thread == thread and record.levelno >= logging.ERROR:
                errors.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("weasyprint")
    logger.addHandler(handler)
    try:
        yield errors
    finally:
        logger.removeHandler(handler)


@cache
def _fetchers():
    """The URL fetchers reports use (classes built on first use: WeasyPrint loads lazily)."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse  # WeasyPrint loads lazily (see above)

    class ReportResources(URLFetcher):
        """Fetch data: URLs and files under the report's base directory, and nothing else."""

        def __init__(self, base_url):
            super().__init__(fail_on_errors=True)
            self.root = None if base_url is None else Path(os.path.realpath(base_url))
            if self.root is not None and not self.root.is_dir():
                raise ValueError(f"base_url must be a local directory, got {base_url!r}.")
            self.base_url = None if self.root is None else self.root.as_uri() + "/"
            self.served: list[tuple[str, str]] = []  # (path under the root, SHA-256)

        def fetch(self, url, headers=None):
            scheme = url.split(":", 1)[0].lower()
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme == "file" and self.root is not None:
                path = Path(os.path.realpath(unquote(urlsplit(url).path)))
                if path.is_relative_to(self.root) and path.is_file():
                    response = super().fetch(path.as_uri(), headers)
                    body = response.read()
                    response.close()
                    self.served.append((path.relative_to(self.root).as_posix(), hashlib.sha256(body).hexdigest()))
                    return URLFetcherResponse(response.url, body, response.headers)
            raise ValueError(f"a report reads only data: URLs and files under its base_url, not {url}")

    class AttachmentSource(URLFetcher):
        """Hand WeasyPrint each attachment's bytes with its declared media type."""

        def __init__(self, attachments):
            super().__init__(fail_on_errors=True)
            self.attachments = {a.name: a for a in attachments}

        def fetch(self, url, headers=None):
            attachment = self.attachments[url.removeprefix(f"{ATTACHMENT_SCHEME}:")]
            return URLFetcherResponse(url, attachment.content, {"Content-Type": attachment.media_type})

    return ReportResources, AttachmentSource
