"""reports.pdf: the specimen report, rendered on a real ledger, read back with pypdf and poppler."""

import base64
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pypdf
import pytest
from PIL import Image

from audit import pdf as reader
from reports.pdf import (
    Relationship,
    ReportAttachment,
    ReportMetadata,
    ReportRenderError,
    render_pdf,
)
from tests.reports.specimen import CHART_FILL, MODEL, ROOT, specimen

ARTIFACTS = ROOT / "test-artifacts" / "reports"
UTC = timezone.utc
# The shared rendering's ledger is built in a transaction that rolls back (tests/reports/conftest.py);
# the marker makes pytest-django set up the test database for it.
pytestmark = pytest.mark.django_db


def open_pdf(data: bytes) -> pypdf.PdfReader:
    return pypdf.PdfReader(io.BytesIO(data), strict=True)


def as_of_utc(rendered) -> datetime:
    return rendered.specimen.as_of.astimezone(UTC).replace(microsecond=0)


def heading_page(texts, heading, start=2) -> int:
    """The 1-based number of the first page after the contents whose text has a line starting HEADING."""
    for number, text in enumerate(texts[start:], start=start + 1):
        if any(line.strip().startswith(heading) for line in text.splitlines()):
            return number
    raise AssertionError(f"no page has the heading {heading!r}")


# --- what a reader sees ------------------------------------------------------------------


def test_cover_contents_running_header_and_page_n_of_m(rendered):
    pdf = open_pdf(rendered.pdf)
    texts = [page.extract_text() for page in pdf.pages]
    meta = rendered.specimen.metadata
    n = len(texts)
    assert n >= 6, "the specimen spans a cover, a contents page and at least four pages of sections"
    # The cover: title, subject, facts; no running header and no page number.
    cover = texts[0]
    assert meta.title in cover and meta.subject in cover and "Specimen audit dossier".upper() in cover
    assert "Page 1 of" not in cover and not cover.splitlines()[0].startswith(meta.title)
    # Every other page: the title and the Custos ids in the header, "As of" and "Page n of m" below.
    ids = " · ".join(meta.custos_ids)
    as_of = as_of_utc(rendered).strftime("%Y-%m-%dT%H:%M:%SZ")
    for number, text in enumerate(texts[1:], start=2):
        assert meta.title in text and ids in text, f"page {number} lacks the running header"
        assert f"Page {number} of {n}" in text and f"As of {as_of}" in text, f"page {number} lacks its footer"
    # The contents give the page each section starts on.
    contents = texts[1]
    titles = ["1. Model version", "2. Evaluation", "2.1 Good credit risk by age group", "3. Evaluation rows",
              "4. Ledger entries", "Attached evidence"]
    for title in titles:
        match = re.search(re.escape(title) + r"[ .]*?(\d+)\s*$", contents, re.M)
        assert match, f"the contents do not list {title!r}:\n{contents}"
        assert int(match.group(1)) == heading_page(texts, title), title
    # PDF bookmarks follow the headings (the cover's and the contents' own are left out).
    outline = [item.title for item in pdf.outline if not isinstance(item, list)]
    assert outline[:3] == ["1. Model version", "2. Evaluation", "3. Evaluation rows"]


def test_a_long_table_breaks_across_pages_and_repeats_its_header(rendered):
    texts = [page.extract_text() for page in open_pdf(rendered.pdf).pages]
    rows = rendered.specimen.rows
    first = heading_page(texts, "3. Evaluation rows")
    last = heading_page(texts, "4. Ledger entries")
    table_pages = list(range(first, last))
    assert len(table_pages) >= 2, "80 rows do not fit one page"
    header = "saving_accounts checking_account credit_amount"
    for number in table_pages:
        assert header in texts[number - 1], f"page {number} does not repeat the table header"
    # Every row is printed once, in order, across those pages.
    printed = [int(m.group(1)) for number in table_pages
               for m in re.finditer(r"^(\d+) [01] (?:male|female) ", texts[number - 1], re.M)]
    assert printed == list(range(len(rows)))


def test_document_information_and_xmp_identify_pdfa3b(rendered):
    pdf = open_pdf(rendered.pdf)
    meta = rendered.specimen.metadata
    when = as_of_utc(rendered)
    info = pdf.metadata
    assert info.title == meta.title and info.author == meta.author and info.subject == meta.subject
    assert info["/Keywords"] == f"{MODEL}, {meta.custos_ids[1]}, audit dossier"
    assert info.creation_date == info.modification_date == when
    assert info.producer == "WeasyPrint 70.0" and "WeasyPrint 70.0" in info.creator and "pydyf" in info.creator
    xmp = pdf.xmp_metadata
    assert (xmp.pdfaid_part, xmp.pdfaid_conformance) == ("3", "B")
    assert xmp.dc_title == {"x-default": meta.title} and xmp.dc_creator == [meta.author]
    assert xmp.dc_description == {"x-default": meta.subject}
    assert xmp.dc_subject == list(meta.all_keywords) and xmp.pdf_keywords == info["/Keywords"]
    assert xmp.xmp_create_date == xmp.xmp_modify_date == xmp.xmp_metadata_date == when.replace(tzinfo=None)
    assert xmp.pdf_producer == info.producer and xmp.xmp_creator_tool == info.creator
    assert re.fullmatch(r"uuid:[0-9a-f-]{36}", xmp.xmpmm_document_id)
    assert re.fullmatch(r"uuid:[0-9a-f-]{36}", xmp.xmpmm_instance_id) and xmp.xmpmm_instance_id != xmp.xmpmm_document_id
    # The trailer /ID: the inputs' digest first, pydyf's MD5 of the written objects second.
    first, second = pdf.trailer["/ID"]
    assert len(first) == len(second) == 32 and first != second
    assert pdf.pdf_header == "%PDF-1.7" and pdf.trailer["/Root"]["/OutputIntents"][0]["/S"] == "/GTS_PDFA1"
    assert reader.pdfa3b_problems(rendered.pdf) == []


def test_evidence_travels_as_associated_files_with_its_bytes(rendered):
    pdf = open_pdf(rendered.pdf)
    when = as_of_utc(rendered)
    expected = {a.name: a for a in rendered.specimen.attachments}
    assert sorted(pdf.attachments) == sorted(expected) == ["evaluation-rows.csv", "evidence-bundle.json", "ml-bom.cdx.json"]
    for name, contents in pdf.attachments.items():
        assert contents == [expected[name].content]
    relationships = {}
    for f in pdf.attachment_list:
        a = expected[f.name]
        assert f.subtype == "/" + a.media_type and f.description == a.description
        assert f.creation_date == f.modification_date == when
        assert f.size == len(a.content)
        relationships[f.name] = f.associated_file_relationship
    assert relationships == {"evidence-bundle.json": "/Source", "ml-bom.cdx.json": "/Supplement",
                             "evaluation-rows.csv": "/Data"}
    # /AF: each file specification once, the same objects the name tree lists.
    af = pdf.trailer["/Root"]["/AF"]
    assert [ref.get_object()["/UF"] for ref in af] == sorted(expected)
    assert len({ref.idnum for ref in af}) == len(af)
    names = pdf.trailer["/Root"]["/Names"]["/EmbeddedFiles"]["/Names"]
    assert [ref.idnum for ref in af] == [ref.idnum for ref in names[1::2]]
    # The stdlib reader the offline verifier uses sees the same files.
    ours = reader.embedded_files(rendered.pdf)
    assert [(f.name, f.content, f.media_type, "/" + f.relationship, f.associated, f.checksum_matches) for f in ours] == [
        (name, expected[name].content, expected[name].media_type, relationships[name], True, True) for name in sorted(expected)
    ]
    for f in ours:
        assert f.checksum == hashlib.md5(f.content).digest()
    # The attached bundle is the ledger's export.
    assert json.loads(pdf.attachments["evidence-bundle.json"][0]) == rendered.specimen.evidence.bundle


def _images_and_streams(pdf, resources, seen):
    """Every image XObject under RESOURCES, and the content streams of its form XObjects."""
    images, streams = [], []
    for name, ref in (resources.get("/XObject") or {}).items():
        xobject = ref.get_object()
        if ref.idnum in seen:
            continue
        seen.add(ref.idnum)
        if xobject["/Subtype"] == "/Image":
            images.append(name)
        else:
            streams.append(xobject.get_data())
            more, inner = _images_and_streams(pdf, xobject.get("/Resources") or {}, seen)
            images += more
            streams += inner
    return images, streams


def test_inline_svg_chart_stays_vector(rendered):
    pdf = open_pdf(rendered.pdf)
    texts = [page.extract_text() for page in pdf.pages]
    page = pdf.pages[heading_page(texts, "2.1 Good credit risk") - 1]
    images, streams = _images_and_streams(pdf, page["/Resources"], set())
    assert images == [], "the chart was rasterised"
    content = page.get_contents().get_data().decode("latin-1") + "".join(s.decode("latin-1") for s in streams)
    r, g, b = (int(CHART_FILL[i : i + 2], 16) / 255 for i in (1, 3, 5))
    fill = f"{r:f}".rstrip("0") + " " + f"{g:f}".rstrip("0") + " " + f"{b:f}".rstrip("0") + " rg"
    bars = rendered.specimen.chart["bars"]
    # Each bar is a filled rectangle in the bar colour, at the size the SVG gave it.
    after_fill = content.split(fill)[1:]
    assert len(after_fill) == len(bars), f"expected {len(bars)} fills of {fill!r}"
    for bar, drawn in zip(bars, after_fill):
        assert re.search(rf"\n{bar['x']:g} {bar['y']:g} 60 {bar['height']:g} re\nf\n", drawn), drawn[:120]
    # Its labels are text (selectable, searchable), not pixels.
    for bar in bars:
        assert bar["label"] in texts[pdf.pages.index(page)]
    # No page of the report has an image at all.
    for p in pdf.pages:
        assert _images_and_streams(pdf, p["/Resources"], set())[0] == []


def test_fonts_are_embedded_subsets_of_dejavu_core(rendered):
    pdf = open_pdf(rendered.pdf)
    fonts = {}
    for page in pdf.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            fonts[font["/BaseFont"]] = "/FontFile2" in descriptor
    assert all(fonts.values()), "every font is embedded"
    families = {re.fullmatch(r"/[A-Z]{6}\+(.+)", name).group(1) for name in fonts}
    # Only faces that fonts-dejavu-core installs: a report must not depend on what else a worker has.
    assert families <= {"DejaVu-Sans", "DejaVu-Sans-Bold", "DejaVu-Sans-Mono", "DejaVu-Sans-Mono-Bold"}, families
    assert {"DejaVu-Sans", "DejaVu-Sans-Bold", "DejaVu-Sans-Mono"} <= families


def test_pages_rasterise_with_poppler(rendered):
    """Render every page to PNG (test-artifacts/reports/) the way a person would look at them."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("specimen-*.png"):
        old.unlink()
    (ARTIFACTS / "specimen.pdf").write_bytes(rendered.pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(ARTIFACTS / "specimen.pdf"), str(ARTIFACTS / "specimen")],
                   check=True, timeout=120)
    pngs = sorted(ARTIFACTS.glob("specimen-*.png"))
    texts = [p.extract_text() for p in open_pdf(rendered.pdf).pages]
    assert len(pngs) == len(texts)
    for png in pngs:
        with Image.open(png) as image:
            assert image.size in ((496, 702), (497, 702))  # A4 at 60 dpi
            assert image.convert("L").getextrema()[0] < 64, f"{png.name} is blank"
    chart_png = pngs[heading_page(texts, "2.1 Good credit risk") - 1]
    with Image.open(chart_png) as image:
        colours = {c for _, c in image.convert("RGB").getcolors(1 << 20)}
    assert tuple(int(CHART_FILL[i : i + 2], 16) for i in (1, 3, 5)) in colours, "the chart's bars are not drawn"


# --- reproducibility -----------------------------------------------------------------------

RENDER_AGAIN = """
import base64, json, sys
from datetime import datetime
from reports.pdf import ReportAttachment, ReportMetadata, render_pdf
spec = json.load(open(sys.argv[1]))
pdf = render_pdf(
    spec["html"],
    metadata=ReportMetadata(**spec["metadata"]),
    attachments=[ReportAttachment(**{**a, "content": base64.b64decode(a["content"])}) for a in spec["attachments"]],
    as_of=datetime.fromisoformat(spec["as_of"]),
)
open(sys.argv[2], "wb").write(pdf)
"""


def test_the_same_inputs_give_the_same_bytes_here_and_in_another_process(rendered, tmp_path):
    s = rendered.specimen
    assert render_pdf(s.html, **s.render_kwargs()) == rendered.pdf
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "html": s.html,
        "metadata": {"title": s.metadata.title, "author": s.metadata.author, "subject": s.metadata.subject,
                     "custos_ids": list(s.metadata.custos_ids), "keywords": list(s.metadata.keywords)},
        "attachments": [{"name": a.name, "content": base64.b64encode(a.content).decode(), "media_type": a.media_type,
                         "relationship": a.relationship.value, "description": a.description} for a in s.attachments],
        # the same instant, written in another zone
        "as_of": s.as_of.astimezone(timezone(timedelta(hours=-5))).isoformat(),
    }))
    out = tmp_path / "again.pdf"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "4242", "TZ": "Pacific/Auckland", "LC_ALL": "C"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run([sys.executable, "-c", RENDER_AGAIN, str(spec), str(out)], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.read_bytes() == rendered.pdf


def test_another_as_of_or_attachment_gives_other_bytes_and_ids(evidence):
    s = specimen(evidence, rows=3)
    first = render_pdf(s.html, **s.render_kwargs())
    later = render_pdf(s.html, **{**s.render_kwargs(), "as_of": s.as_of + timedelta(seconds=1)})
    extra = ReportAttachment("note.json", b"{}", "application/json", Relationship.SUPPLEMENT)
    more = render_pdf(s.html, **{**s.render_kwargs(), "attachments": [*s.attachments, extra]})
    ids = [open_pdf(p).trailer["/ID"][0] for p in (first, later, more)]
    assert len(set(ids)) == 3 and len({first, later, more}) == 3
    assert open_pdf(later).metadata.creation_date == s.as_of.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)


def test_the_base_layout_renders_without_weasyprint_warnings(evidence, caplog):
    s = specimen(evidence, rows=3)
    caplog.set_level("WARNING", logger="weasyprint")
    pdf = render_pdf(s.html, **s.render_kwargs())
    assert [r.getMessage() for r in caplog.records if r.name.startswith("weasyprint")] == []
    assert reader.pdfa3b_problems(pdf) == []


# --- refusals ------------------------------------------------------------------------------

AS_OF = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
META = ReportMetadata(title="T", author="A", subject="S", custos_ids=("governance.modelversion:1",))


def small(html_body: str, **kwargs) -> bytes:
    html = f"<!DOCTYPE html><html><head><title>x</title></head><body>{html_body}</body></html>"
    return render_pdf(html, **{"metadata": META, "attachments": [], "as_of": AS_OF, **kwargs})


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="aware"):
        small("<p>x</p>", as_of=datetime(2025, 1, 2))
    a = ReportAttachment("a.json", b"{}", "application/json", Relationship.DATA)
    with pytest.raises(ValueError, match="share a name"):
        small("<p>x</p>", attachments=[a, a])
    with pytest.raises(ValueError, match="names are ASCII"):
        ReportAttachment("../a.json", b"", "application/json", Relationship.DATA)
    with pytest.raises(ValueError, match="media type"):
        ReportAttachment("a.json", b"", "json", Relationship.DATA)
    with pytest.raises(ValueError):
        ReportAttachment("a.json", b"", "application/json", "EncryptedPayload")  # PDF 2.0 only, not PDF/A-3
    with pytest.raises(ValueError, match="Custos ids"):
        ReportMetadata(title="T", author="A", subject="S", custos_ids=("modelversion 1",))
    with pytest.raises(ValueError, match="without commas"):
        ReportMetadata(title="T", author="A", subject="S", custos_ids=("governance.modelversion:1",), keywords=("a, b",))
    with pytest.raises(ValueError, match="one line"):
        ReportMetadata(title="T\nU", author="A", subject="S", custos_ids=("governance.modelversion:1",))


def test_attachments_come_only_from_the_attachments_argument():
    html = '<!DOCTYPE html><html><head><link rel="attachment" href="data:,x"></head><body>x</body></html>'
    with pytest.raises(ReportRenderError, match="rel=attachment"):
        render_pdf(html, metadata=META, attachments=[], as_of=AS_OF)
    with pytest.raises(ReportRenderError, match="rel=attachment"):
        small('<a rel="attachment" href="data:,x">file</a>')


def test_no_network_and_no_file_outside_base_url(tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    with listener:
        with pytest.raises(ReportRenderError, match="reads only data: URLs"):
            small(f'<img src="http://127.0.0.1:{port}/logo.png">')
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected
    outside = tmp_path / "secret.svg"
    outside.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    base = tmp_path / "static"
    base.mkdir()
    with pytest.raises(ReportRenderError, match="reads only data: URLs"):
        small('<img src="../secret.svg">', base_url=base)
    with pytest.raises(ReportRenderError, match="reads only data: URLs"):
        small(f'<img src="{outside.as_uri()}">')  # no base_url: no files at all


def test_local_resources_are_read_under_base_url_and_count_in_the_ids(tmp_path):
    base = tmp_path / "static"
    base.mkdir()
    logo = base / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="#123456"/></svg>')
    first = small('<img src="logo.svg">', base_url=base)
    page = open_pdf(first).pages[0]
    assert "0.070588 0.203922 0.337255 rg" in page.get_contents().get_data().decode("latin-1")
    logo.write_text(logo.read_text().replace("#123456", "#654321"))
    second = small('<img src="logo.svg">', base_url=base)
    assert open_pdf(first).trailer["/ID"][0] != open_pdf(second).trailer["/ID"][0]


def test_a_contents_link_to_a_missing_section_fails():
    with pytest.raises(ReportRenderError, match="No anchor #nowhere"):
        small('<a href="#nowhere">1. Nowhere</a>')


def test_stylesheets_apply_after_the_html():
    pdf = small("<p>x</p>", stylesheets=["@page { size: A5 }"])
    width, height = (float(v) for v in open_pdf(pdf).pages[0].mediabox[2:])
    assert (round(width), round(height)) == (420, 595)


def test_pdfa2_would_drop_the_evidence():
    """Why PDF/A-3: WeasyPrint strips non-PDF attachments from a PDF/A-2 file."""
    from weasyprint import HTML, Attachment

    html = HTML(string="<p>x</p>")
    kept = html.write_pdf(pdf_variant="pdf/a-3b", attachments=[Attachment(string=b"{}", name="a.json")])
    dropped = html.write_pdf(pdf_variant="pdf/a-2b", attachments=[Attachment(string=b"{}", name="a.json")])
    assert [f.name for f in reader.embedded_files(kept)] == ["a.json"]
    assert reader.embedded_files(dropped) == []


# --- import hygiene ------------------------------------------------------------------------


def test_django_starts_without_loading_weasyprint():
    code = (
        "import sys, django; django.setup()\n"
        "from django.urls import get_resolver; get_resolver().url_patterns\n"
        "import reports.pdf\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('weasyprint', 'pydyf', 'pypdf')))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_a_written_pdf_is_refused_unless_it_is_what_it_claims():
    """render_pdf reads its output back: WeasyPrint 70's own PDF/A-3b (each file twice in /AF) fails."""
    from weasyprint import HTML, Attachment

    from reports.pdf import _check_written

    a = ReportAttachment("a.json", b"{}", "application/json", Relationship.DATA)
    raw = HTML(string="<title>x</title><p>x</p>").write_pdf(
        pdf_variant="pdf/a-3b", attachments=[Attachment(string=a.content, name=a.name, relationship="Data")]
    )
    with pytest.raises(ReportRenderError, match="more than once"):
        _check_written(raw, [a])
    good = small("<p>x</p>", attachments=[a])
    _check_written(good, [a])
    with pytest.raises(ReportRenderError, match="exactly the attachments"):
        _check_written(good, [a, ReportAttachment("b.json", b"[]", "application/json", Relationship.DATA)])
