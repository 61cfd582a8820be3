"""audit/pdf.py, the stdlib reader of a report's attached files, and `python -m audit.verifier --report`."""

import base64
import hashlib
import io
import json
import subprocess
import sys
import zlib

import pypdf
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from audit import pdf as reader
from audit.canonical import canonical_json
from audit.keys import generate_key_file, load_key_file, signing_key
from audit.pdf import EVIDENCE_BUNDLE_NAME, PDFError, PDFFile
from reports.pdf import Relationship, ReportAttachment, evidence_bundle_attachment, render_pdf
from tests.audit.test_attestation import BLOCK_DJANGO, VERIFIER_FILES
from tests.reports.specimen import ROOT, rolled_back_evidence, specimen

pytestmark = pytest.mark.django_db  # the module's ledger is built in a transaction that rolls back


@pytest.fixture(scope="module")
def evidence(django_db_setup, django_db_blocker, signing_key_dir, tmp_path_factory):
    return rolled_back_evidence(django_db_blocker, signing_key_dir, tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def report(evidence):
    """A small real report: the specimen on three rows, with the ledger's evidence bundle."""
    s = specimen(evidence, rows=3)
    return s, render_pdf(s.html, **s.render_kwargs())


def _tampered_bundle(bundle):
    """BUNDLE with one entry's signed content changed (its payload says something else)."""
    bundle = json.loads(json.dumps(bundle))
    item = bundle["entries"][1]
    content = json.loads(base64.b64decode(item["canonical"]))
    content["payload"] = {**content["payload"], "approved": True}
    item["canonical"] = base64.b64encode(canonical_json(content)).decode()
    return bundle


@pytest.fixture(scope="module")
def tampered_report(evidence):
    """The same report re-rendered by someone who edited an entry in the attached bundle."""
    s = specimen(evidence, rows=3, bundle_attachment=evidence_bundle_attachment(_tampered_bundle(evidence.bundle)))
    return render_pdf(s.html, **s.render_kwargs())


def _pypdf_files(data):
    r = pypdf.PdfReader(io.BytesIO(data))
    return {f.name: (f.content, f.subtype, f.associated_file_relationship) for f in r.attachment_list}


# --- the reader ----------------------------------------------------------------------------


def test_reader_sees_what_pypdf_sees_in_a_report(report):
    s, data = report
    pdf = PDFFile(data)
    assert pdf.revisions == 1 and b"/ObjStm" in data and b"/XRef" in data  # what pydyf writes
    ours = {f.name: (f.content, "/" + f.media_type, "/" + f.relationship) for f in pdf.embedded_files()}
    assert ours == _pypdf_files(data)
    assert {name: c for name, (c, _, _) in ours.items()} == {a.name: a.content for a in s.attachments}
    assert json.loads(reader.embedded_file(data, EVIDENCE_BUNDLE_NAME).content) == s.evidence.bundle
    info = pypdf.PdfReader(io.BytesIO(data)).metadata
    assert reader.text(pdf.info["Title"]) == info.title and reader.text(pdf.info["Keywords"]) == info["/Keywords"]


def test_reader_reads_classic_cross_reference_tables():
    from weasyprint import HTML, Attachment

    uncompressed = HTML(string="<p>x</p>").write_pdf(
        uncompressed_pdf=True, attachments=[Attachment(string=b'{"a": 1}', name="a.json", description="é (x)")]
    )
    assert b"\nxref\n" in uncompressed and b"/ObjStm" not in uncompressed
    (f,) = reader.embedded_files(uncompressed)
    assert (f.name, f.content, f.description, f.media_type) == ("a.json", b'{"a": 1}', "é (x)", "application/json")
    # Another writer's structure: pypdf's own.
    writer = pypdf.PdfWriter()
    writer.add_blank_page(200, 200)
    writer.add_attachment("rows.csv", b"a,b\n1,2\n")
    writer.add_attachment("other name.txt", "text")
    out = io.BytesIO()
    writer.write(out)
    files = {f.name: f.content for f in reader.embedded_files(out.getvalue())}
    assert files == {"rows.csv": b"a,b\n1,2\n", "other name.txt": b"text"}


def test_reader_follows_an_incremental_update(report):
    _, data = report
    writer = pypdf.PdfWriter(io.BytesIO(data), incremental=True)
    writer.add_attachment("added-later.txt", b"appended by someone else")
    out = io.BytesIO()
    writer.write(out)
    updated = out.getvalue()
    assert updated.startswith(data)
    pdf = PDFFile(updated)
    assert pdf.revisions == 2
    names = [f.name for f in pdf.embedded_files()]
    assert "added-later.txt" in names and EVIDENCE_BUNDLE_NAME in names
    assert {f.name: f.content for f in pdf.embedded_files()} == {n: c for n, (c, _, _) in _pypdf_files(updated).items()}


def test_png_predictors_in_cross_reference_streams_decode():
    rows = [bytes([1, 0, 0, 10]), bytes([1, 0, 0, 30]), bytes([2, 0, 1, 0])]
    columns = len(rows[0])
    encoded, previous = b"", bytes(columns)
    for row in rows:  # PNG "Up" rows, as many writers encode xref streams
        encoded += b"\x02" + bytes((a - b) & 0xFF for a, b in zip(row, previous))
        previous = row
    stream = reader.Stream({"Filter": "FlateDecode", "DecodeParms": {"Predictor": 12, "Columns": columns}},
                           zlib.compress(encoded))
    assert reader._decode(stream, 1 << 20) == b"".join(rows)


def test_report_digests(report):
    s, data = report
    digests = reader.report_digests(data)
    assert digests.pdf == hashlib.sha256(data).hexdigest()
    assert digests.attachments == {a.name: hashlib.sha256(a.content).hexdigest() for a in s.attachments}


def test_pdfa3b_check_finds_what_weasyprint_alone_gets_wrong(report):
    from weasyprint import HTML, Attachment

    assert reader.pdfa3b_problems(report[1]) == []
    html = HTML(string="<title>x</title><p>x</p>")
    # WeasyPrint 70's own PDF/A-3b lists every attached file twice in /AF (reports/pdf.py fixes it).
    raw = html.write_pdf(pdf_variant="pdf/a-3b", attachments=[Attachment(string=b"{}", name="a.json")])
    assert reader.pdfa3b_problems(raw) == ["the catalog's /AF lists a file more than once"]
    plain = html.write_pdf(attachments=[Attachment(string=b"{}", name="a.json")])
    problems = reader.pdfa3b_problems(plain)
    assert "the catalog has no XMP metadata stream" in problems and "XMP pdfaid:part is None, not '3'" in problems
    assert any("no PDF/A output intent" in p for p in problems)
    assert any("not an associated file" in p for p in problems) and any("/AFRelationship" in p for p in problems)
    assert reader.pdfa3b_problems(b"%PDF-1.7\n") == ["unreadable: no startxref at the end of the file"]


def test_xmp_with_entities_is_refused():
    packet = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/"/>'
    with pytest.raises(PDFError, match="DTD"):
        reader.xmp_properties(packet)


# --- hostile input: a PDFError, never another exception -------------------------------------


def _minimal_pdf(objects: list[bytes], root=1) -> bytes:
    """A classic PDF of OBJECTS (numbered from 1) with a correct cross-reference table."""
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def _catalog_with_file(stream: bytes, length: bytes) -> list[bytes]:
    return [
        b"<< /Type /Catalog /Names << /EmbeddedFiles 2 0 R >> >>",
        b"<< /Names [(f) 3 0 R] >>",
        b"<< /Type /Filespec /F (f) /UF (f) /EF << /F 4 0 R >> >>",
        b"<< /Type /EmbeddedFile /Filter /FlateDecode /Length " + length + b" >>\nstream\n" + stream + b"\nendstream",
    ]


def test_minimal_pdf_reads():
    body = zlib.compress(b"hello")
    (f,) = reader.embedded_files(_minimal_pdf(_catalog_with_file(body, str(len(body)).encode())))
    assert f.content == b"hello" and f.associated is False


@pytest.mark.parametrize(
    "data, message",
    [
        (b"not a pdf", "no %PDF- header"),
        (_minimal_pdf(_catalog_with_file(zlib.compress(b"x"), b"4 0 R")), "refers to itself"),  # its own /Length
        (_minimal_pdf(_catalog_with_file(b"garbage!", b"8")), "FlateDecode stream is corrupt"),
        (_minimal_pdf(_catalog_with_file(zlib.compress(b"x"), b"999")), "bad stream /Length"),
        (_minimal_pdf([b"[" * 200 + b"]" * 200]), "nested deeper"),
        (_minimal_pdf([b"<< /Type /Catalog /Names << /EmbeddedFiles 2 0 R >> >>", b"<< /Kids [2 0 R] >>"]), "loops"),
    ],
    ids=["not-pdf", "length-loop", "corrupt-flate", "bad-length", "deep-nesting", "name-tree-loop"],
)
def test_malformed_pdfs_are_pdf_errors(data, message):
    with pytest.raises(PDFError, match=message):
        reader.embedded_files(data)


def test_decompression_is_bounded():
    bomb = zlib.compress(b"\0" * (8 << 20), 9)
    data = _minimal_pdf(_catalog_with_file(bomb, str(len(bomb)).encode()))
    with pytest.raises(PDFError, match="more than 1048576 bytes"):
        PDFFile(data, max_stream_bytes=1 << 20).embedded_files()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_to_a_report_is_a_pdf_error_or_a_reading(report, data):
    _, pdf = report
    damaged = bytearray(pdf)
    kind = data.draw(st.sampled_from(["flip", "truncate", "splice"]))
    if kind == "truncate":
        damaged = damaged[: data.draw(st.integers(0, len(pdf)))]
    else:
        for _ in range(data.draw(st.integers(1, 8))):
            at = data.draw(st.integers(0, len(pdf) - 1))
            if kind == "flip":
                damaged[at] ^= 1 << data.draw(st.integers(0, 7))
            else:
                damaged[at : at + 4] = data.draw(st.binary(min_size=0, max_size=8))
    try:
        files = reader.embedded_files(bytes(damaged))
    except PDFError:
        return
    assert all(isinstance(f.content, bytes) for f in files)


# --- the offline verifier ------------------------------------------------------------------


def _verifier(tmp_path, *args, files=VERIFIER_FILES):
    """Run `python -m audit.verifier ARGS` from a folder holding only the verifier FILES, without Django."""
    package = tmp_path / "tools" / "audit"
    if not package.exists():
        package.mkdir(parents=True)
        for name in files:
            (package / name).write_text((ROOT / "audit" / name).read_text())
    return subprocess.run(
        [sys.executable, "-c", BLOCK_DJANGO, *map(str, args)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "tools")},
    )


def test_verifier_checks_the_evidence_a_report_carries(tmp_path, report, evidence):
    _, data = report
    path = tmp_path / "dossier.pdf"
    path.write_bytes(data)
    result = _verifier(tmp_path, "--report", path, "--key", signing_key().verifier_key)
    assert result.returncode == 0, result.stdout + result.stderr
    bundle = evidence.bundle
    assert f"sha256:{hashlib.sha256(data).hexdigest()}" in result.stdout
    assert f"carries {EVIDENCE_BUNDLE_NAME} (Source, application/json" in result.stdout
    assert result.stdout.splitlines()[-2:] == [
        f"OK: the report's evidence ({len(bundle['entries'])} entries, inclusion proofs) is consistent with the "
        f"checkpoint of {bundle['origin']} at tree size {bundle['tree_size']}, root {bundle['root_hash']}",
        "Each of these entries is in that tree. A partial bundle does not prove that no entry about "
        f"{', '.join(bundle['subjects'])} was left out; a complete bundle (ledger export without --subject) does.",
    ]


def test_verifier_fails_a_report_whose_bundle_was_altered(tmp_path, tampered_report):
    path = tmp_path / "dossier.pdf"
    path.write_bytes(tampered_report)
    result = _verifier(tmp_path, "--report", path, "--key", signing_key().verifier_key, "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith(f"FAILED: {EVIDENCE_BUNDLE_NAME}: entry ")
    assert "does not match its hash" in result.stdout


def test_verifier_fails_a_report_signed_by_another_key_or_without_evidence(tmp_path, report):
    _, data = report
    path = tmp_path / "dossier.pdf"
    path.write_bytes(data)
    other = tmp_path / "other.key"
    generate_key_file(other)
    untrusted = _verifier(tmp_path, "--report", path, "--key", load_key_file(other, signing_key().name).verifier_key)
    assert untrusted.returncode == 1 and "not signed by any of the trusted keys" in untrusted.stdout
    bare = tmp_path / "bare.pdf"
    bare.write_bytes(render_pdf(
        "<p>x</p>", metadata=report[0].metadata, as_of=report[0].as_of,
        attachments=[ReportAttachment("rows.csv", b"a\n", "text/csv", Relationship.DATA)],
    ))
    missing = _verifier(tmp_path, "--report", bare, "--key", signing_key().verifier_key)
    assert missing.returncode == 1 and f"carries 0 files named {EVIDENCE_BUNDLE_NAME}" in missing.stdout


def test_verifier_report_mode_exits_2_on_unusable_input(tmp_path, report):
    key = signing_key().verifier_key
    not_pdf = tmp_path / "x.pdf"
    not_pdf.write_text("hello")
    assert _verifier(tmp_path, "--report", not_pdf, "--key", key).returncode == 2
    assert _verifier(tmp_path, "--report", tmp_path / "absent.pdf", "--key", key).returncode == 2
    truncated = tmp_path / "t.pdf"
    truncated.write_bytes(report[1][: len(report[1]) // 2])
    assert _verifier(tmp_path, "--report", truncated, "--key", key).returncode == 2
    assert _verifier(tmp_path, "bundle.json", "--report", not_pdf, "--key", key).returncode == 2


def test_a_verifier_copy_without_pdf_py_says_so(tmp_path, report):
    """Deploy jobs that copied the six attestation files keep working; --report asks for the seventh."""
    path = tmp_path / "dossier.pdf"
    path.write_bytes(report[1])
    six = [name for name in VERIFIER_FILES if name != "pdf.py"]
    result = _verifier(tmp_path, "--report", path, "--key", signing_key().verifier_key, files=six)
    assert result.returncode == 2 and "lacks audit/pdf.py" in result.stderr
