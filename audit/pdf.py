"""Read the files a PDF carries, with the standard library only: ``embedded_files(data)``.

Custos reports are PDF/A-3b files that carry their evidence as *associated files* (ISO 19005-3
§6.8, ISO 32000-1 §7.11.4 and §14.13): each one an embedded file stream (``/Type
/EmbeddedFile``, its media type as ``/Subtype``, an MD5 ``/CheckSum`` and dates in ``/Params``)
behind a file specification (``/Filespec`` with ``/F``, ``/UF``, ``/AFRelationship``) that the
document catalog lists both in its ``/Names /EmbeddedFiles`` name tree and in its ``/AF`` array.
The offline verifier (``python -m audit.verifier --report``) takes the evidence bundle out of a
report with this module, so, like the verifier, it needs nothing but Python.

It reads what WeasyPrint and pydyf write — a cross-reference stream, objects packed in
FlateDecode object streams — as well as classic cross-reference tables (uncompressed files,
other writers), hybrid files and incremental updates (``revisions`` counts them: Custos writes
one). It is not a general PDF library: no encryption, no filter but FlateDecode (with PNG
predictors), no repair of damaged files. Its input may be hostile, so whatever it cannot read
is a ``PDFError`` (never another exception), nesting and decompressed sizes are bounded, and
the XMP packet is parsed only when it declares no DTD or entities.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass, field
from xml.etree import ElementTree

EVIDENCE_BUNDLE_NAME = "evidence-bundle.json"
"""The name under which a Custos report carries the evidence bundle the verifier checks."""

RELATIONSHIPS = ("Source", "Data", "Alternative", "Supplement", "Unspecified")
"""The /AFRelationship values PDF/A-3 allows (ISO 19005-3 §6.8)."""

MAX_STREAM_BYTES = 512 * 1024 * 1024
MAX_DEPTH = 64

_WHITESPACE = b"\x00\t\n\x0c\r "
_DELIMITERS = b"()<>[]{}/%"
_SPACE_RE = re.compile(rb"(?:[\x00\t\n\x0c\r ]+|%[^\r\n]*)+")
_REGULAR_RE = re.compile(rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%]+")
_NUMBER_RE = re.compile(rb"[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_INT_RE = re.compile(rb"\d+")
_OBJ_RE = re.compile(rb"(\d+)[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+obj")
_XREF_ENTRY_RE = re.compile(rb"[\x00\t\n\x0c\r ]*(\d{1,10})[ ]+(\d{1,5})[ ]+([nf])")
_STARTXREF_RE = re.compile(rb"startxref[\x00\t\n\x0c\r ]+(\d+)")
_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f",
            ord("("): b"(", ord(")"): b")", ord("\\"): b"\\"}


class PDFError(ValueError):
    """The data is not a PDF this reader can read; the message says where it stopped."""


class Name(str):
    """A PDF name, without its slash (``/Source`` is ``Name("Source")``)."""


@dataclass(frozen=True)
class Ref:
    """An indirect reference ``number generation R``."""

    number: int
    generation: int = 0


@dataclass
class Stream:
    """A stream object: its dictionary and its raw (still encoded) bytes."""

    dict: dict
    raw: bytes


@dataclass(frozen=True)
class EmbeddedFile:
    """One file a PDF carries, as its file specification and embedded file stream describe it."""

    name: str
    content: bytes
    media_type: str | None
    relationship: str | None
    description: str
    created: str | None
    modified: str | None
    checksum: bytes | None
    declared_size: int | None
    associated: bool
    """Whether the catalog's /AF array lists this file (what makes it a PDF/A-3 associated file)."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def checksum_matches(self) -> bool | None:
        """Whether the content has the MD5 and size its /Params record (None if it records neither)."""
        if self.checksum is None and self.declared_size is None:
            return None
        md5 = hashlib.md5(self.content, usedforsecurity=False).digest()
        return (self.checksum in (None, md5)) and self.declared_size in (None, len(self.content))


@dataclass(frozen=True)
class ReportDigests:
    """The SHA-256 of a PDF file and of each file it carries (by name)."""

    pdf: str
    attachments: dict[str, str] = field(default_factory=dict)


# --- objects -------------------------------------------------------------------------------


class _Parser:
    """Parse PDF objects out of DATA (the file, or the decoded body of an object stream)."""

    def __init__(self, data: bytes):
        self.data = data

    def skip(self, pos: int) -> int:
        match = _SPACE_RE.match(self.data, pos)
        return match.end() if match else pos

    def value(self, pos: int, depth: int = 0):
        """Parse one object at POS; return (object, position after it)."""
        if depth > MAX_DEPTH:
            raise PDFError(f"objects nested deeper than {MAX_DEPTH} at byte {pos}")
        data = self.data
        pos = self.skip(pos)
        if pos >= len(data):
            raise PDFError("unexpected end of data")
        c = data[pos]
        if c == 0x2F:  # /
            match = _REGULAR_RE.match(data, pos + 1)
            raw = match.group() if match else b""
            return Name(_unescape_name(raw)), pos + 1 + len(raw)
        if data.startswith(b"<<", pos):
            return self._dictionary(pos + 2, depth)
        if c == 0x3C:  # <
            end = data.find(b">", pos)
            if end < 0:
                raise PDFError(f"unterminated hex string at byte {pos}")
            digits = re.sub(rb"[\x00\t\n\x0c\r ]", b"", data[pos + 1 : end])
            if len(digits) % 2:
                digits += b"0"
            try:
                return bytes.fromhex(digits.decode("ascii")), end + 1
            except ValueError as exc:
                raise PDFError(f"bad hex string at byte {pos}") from exc
        if c == 0x5B:  # [
            items, pos = [], pos + 1
            while True:
                pos = self.skip(pos)
                if data.startswith(b"]", pos):
                    return items, pos + 1
                item, pos = self.value(pos, depth + 1)
                items.append(item)
        if c == 0x28:  # (
            return self._literal(pos + 1)
        match = _REGULAR_RE.match(data, pos)
        if not match:
            raise PDFError(f"unexpected {data[pos:pos + 1]!r} at byte {pos}")
        token, end = match.group(), match.end()
        if _NUMBER_RE.match(token):
            if b"." in token:
                return float(token), end
            number = int(token)
            # "n g R" is a reference: look ahead for the generation and the R.
            after = self.skip(end)
            gen = _INT_RE.match(data, after)
            if gen:
                after_gen = self.skip(gen.end())
                if data.startswith(b"R", after_gen) and not _REGULAR_RE.match(data, after_gen + 1):
                    return Ref(number, int(gen.group())), after_gen + 1
            return number, end
        if token == b"true":
            return True, end
        if token == b"false":
            return False, end
        if token == b"null":
            return None, end
        raise PDFError(f"unexpected keyword {token[:20]!r} at byte {pos}")

    def _dictionary(self, pos: int, depth: int):
        data, out = self.data, {}
        while True:
            pos = self.skip(pos)
            if data.startswith(b">>", pos):
                return out, pos + 2
            key, pos = self.value(pos, depth + 1)
            if not isinstance(key, Name):
                raise PDFError(f"dictionary key is not a name at byte {pos}")
            out[str(key)], pos = self.value(pos, depth + 1)

    def _literal(self, pos: int):
        data, out, nesting = self.data, bytearray(), 1
        n = len(data)
        while pos < n:
            c = data[pos]
            if c == 0x5C:  # backslash
                pos += 1
                if pos >= n:
                    break
                e = data[pos]
                if e in _ESCAPES:
                    out += _ESCAPES[e]
                    pos += 1
                elif 0x30 <= e <= 0x37:
                    digits = re.match(rb"[0-7]{1,3}", data[pos : pos + 3]).group()
                    out.append(int(digits, 8) & 0xFF)
                    pos += len(digits)
                elif e == 0x0D:  # a backslash before an end of line continues the line
                    pos += 2 if data.startswith(b"\r\n", pos) else 1
                elif e == 0x0A:
                    pos += 1
                else:
                    out.append(e)
                    pos += 1
                continue
            if c == 0x28:
                nesting += 1
            elif c == 0x29:
                nesting -= 1
                if nesting == 0:
                    return bytes(out), pos + 1
            if c == 0x0D:  # an unescaped end of line reads as \n, whichever it was
                out += b"\n"
                pos += 2 if data.startswith(b"\r\n", pos) else 1
                continue
            out.append(c)
            pos += 1
        raise PDFError("unterminated string")


def _unescape_name(raw: bytes) -> str:
    out = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)
    return out.decode("utf-8", errors="replace")


def text(value) -> str | None:
    """Decode a PDF text string (UTF-16BE or UTF-8 with a byte order mark, else PDFDocEncoding)."""
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    if not isinstance(value, bytes):
        raise PDFError(f"expected a string, got {type(value).__name__}")
    if value.startswith(b"\xfe\xff"):
        return value[2:].decode("utf-16-be", errors="replace")
    if value.startswith(b"\xef\xbb\xbf"):
        return value[3:].decode("utf-8", errors="replace")
    # PDFDocEncoding differs from Latin-1 only in 0x18-0x1F and 0x80-0x9F, which no name or
    # description Custos writes uses.
    return value.decode("latin-1")


# --- streams -------------------------------------------------------------------------------


def _decode(stream: Stream, limit: int) -> bytes:
    filters = stream.dict.get("Filter")
    params = stream.dict.get("DecodeParms")
    filters = [] if filters is None else filters if isinstance(filters, list) else [filters]
    params = params if isinstance(params, list) else [params] * len(filters)
    params = (params + [None] * len(filters))[: len(filters)]
    data = stream.raw
    for name, parm in zip(filters, params):
        if name != "FlateDecode":
            raise PDFError(f"stream filter /{name} is not supported (only FlateDecode)")
        decompressor = zlib.decompressobj()
        try:
            out = decompressor.decompress(data, limit + 1)
            if len(out) <= limit and not decompressor.unconsumed_tail:
                out += decompressor.flush()
        except zlib.error as exc:
            raise PDFError(f"FlateDecode stream is corrupt: {exc}") from exc
        if len(out) > limit or decompressor.unconsumed_tail:
            raise PDFError(f"a stream decodes to more than {limit} bytes")
        data = _unpredict(out, parm) if isinstance(parm, dict) else out
    return data


def _unpredict(data: bytes, parms: dict) -> bytes:
    predictor = parms.get("Predictor", 1)
    if predictor == 1:
        return data
    if not isinstance(predictor, int) or predictor < 10:
        raise PDFError(f"predictor {predictor} is not supported (only PNG predictors)")
    colors, bits, columns = parms.get("Colors", 1), parms.get("BitsPerComponent", 8), parms.get("Columns", 1)
    if not all(isinstance(v, int) and 0 < v <= 1 << 16 for v in (colors, bits, columns)):
        raise PDFError("bad predictor parameters")
    bpp = max(1, colors * bits // 8)
    width = (colors * bits * columns + 7) // 8
    out, previous = bytearray(), bytearray(width)
    for start in range(0, len(data), width + 1):
        kind, row = data[start], bytearray(data[start + 1 : start + 1 + width].ljust(width, b"\0"))
        for i in range(width):
            left = row[i - bpp] if i >= bpp else 0
            up, up_left = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
            elif kind != 0:
                raise PDFError(f"unknown PNG predictor row type {kind}")
        out += row
        previous = row
    return bytes(out)


# --- the file ------------------------------------------------------------------------------


class PDFFile:
    """A parsed PDF: its trailer, catalog and objects, resolved on demand."""

    def __init__(self, data: bytes, *, max_stream_bytes: int = MAX_STREAM_BYTES):
        if not isinstance(data, (bytes, bytearray)) or not data.startswith(b"%PDF-"):
            raise PDFError("not a PDF (no %PDF- header)")
        self.data = bytes(data)
        self.max_stream_bytes = max_stream_bytes
        self._parser = _Parser(self.data)
        self._xref: dict[int, tuple] = {}  # number -> ("n", offset, gen) | ("s", stream number, index)
        self._cache: dict[int, object] = {}
        self._object_streams: dict[int, tuple[_Parser, list[int], int]] = {}
        self._resolving: set[int] = set()
        self.revisions = 0
        self.trailer = self._read_xref_chain(self._startxref())
        if "Encrypt" in self.trailer:
            raise PDFError("the PDF is encrypted")
        self.catalog = self.resolve(self.trailer.get("Root"))
        if not isinstance(self.catalog, dict):
            raise PDFError("the trailer names no document catalog")

    # cross-reference sections

    def _startxref(self) -> int:
        tail_start = max(0, len(self.data) - 4096)
        matches = list(_STARTXREF_RE.finditer(self.data, tail_start))
        if not matches:
            raise PDFError("no startxref at the end of the file")
        return int(matches[-1].group(1))

    def _read_xref_chain(self, offset: int) -> dict:
        trailer, seen = None, set()
        while offset is not None:
            if offset in seen or len(seen) > 1000:
                raise PDFError("the cross-reference sections form a loop")
            seen.add(offset)
            section_trailer = self._read_xref_section(offset)
            self.revisions += 1
            if trailer is None:
                trailer = section_trailer
            offset = section_trailer.get("Prev")
            if offset is not None and not isinstance(offset, int):
                raise PDFError("bad /Prev in a trailer")
        return trailer

    def _read_xref_section(self, offset: int) -> dict:
        if not 0 <= offset < len(self.data):
            raise PDFError(f"cross-reference offset {offset} is outside the file")
        pos = self._parser.skip(offset)
        if self.data.startswith(b"xref", pos):
            return self._read_xref_table(pos + 4)
        return self._read_xref_stream(pos)

    def _add(self, number: int, entry: tuple) -> None:
        # Newer sections are read first: they win.
        self._xref.setdefault(number, entry)

    def _read_xref_table(self, pos: int) -> dict:
        parser, data = self._parser, self.data
        while True:
            pos = parser.skip(pos)
            if data.startswith(b"trailer", pos):
                trailer, _ = parser.value(pos + 7)
                break
            header = re.compile(rb"(\d+)[ ]+(\d+)").match(data, pos)
            if not header:
                raise PDFError(f"bad cross-reference table at byte {pos}")
            first, count = int(header.group(1)), int(header.group(2))
            pos = header.end()
            if count > len(data) // 18:
                raise PDFError("cross-reference table longer than the file")
            for number in range(first, first + count):
                entry = _XREF_ENTRY_RE.match(data, pos)
                if not entry:
                    raise PDFError(f"bad cross-reference entry at byte {pos}")
                pos = entry.end()
                if entry.group(3) == b"n":
                    self._add(number, ("n", int(entry.group(1)), int(entry.group(2))))
                else:
                    self._add(number, ("f",))
        if not isinstance(trailer, dict):
            raise PDFError("the trailer is not a dictionary")
        if isinstance(trailer.get("XRefStm"), int):  # a hybrid file: the stream lists the rest
            self._read_xref_stream(trailer["XRefStm"])
        return trailer

    def _read_xref_stream(self, pos: int) -> dict:
        _, stream = self._indirect_at(pos)
        if not isinstance(stream, Stream) or stream.dict.get("Type") != "XRef":
            raise PDFError(f"no cross-reference table or stream at byte {pos}")
        widths = stream.dict.get("W")
        size = stream.dict.get("Size")
        if not (isinstance(widths, list) and len(widths) == 3
                and all(isinstance(w, int) and 0 <= w <= 8 for w in widths)):
            raise PDFError("bad /W in a cross-reference stream")
        if not isinstance(size, int):
            raise PDFError("bad /Size in a cross-reference stream")
        index = stream.dict.get("Index", [0, size])
        if not (isinstance(index, list) and len(index) % 2 == 0 and all(isinstance(i, int) for i in index)):
            raise PDFError("bad /Index in a cross-reference stream")
        body = _decode(stream, self.max_stream_bytes)
        width, at = sum(widths), 0
        for first, count in zip(index[::2], index[1::2]):
            for number in range(first, first + count):
                row = body[at : at + width]
                if len(row) < width:
                    raise PDFError("cross-reference stream shorter than its /Index")
                at += width
                fields, i = [], 0
                for w in widths:
                    fields.append(int.from_bytes(row[i : i + w], "big"))
                    i += w
                kind = fields[0] if widths[0] else 1
                if kind == 1:
                    self._add(number, ("n", fields[1], fields[2]))
                elif kind == 2:
                    self._add(number, ("s", fields[1], fields[2]))
                else:
                    self._add(number, ("f",))
        return stream.dict

    # objects

    def _indirect_at(self, pos: int):
        """Parse the indirect object ``n g obj ... endobj`` at POS; return (number, object)."""
        parser, data = self._parser, self.data
        pos = parser.skip(pos)
        header = _OBJ_RE.match(data, pos)
        if not header:
            raise PDFError(f"no object at byte {pos}")
        value, pos = parser.value(header.end())
        after = parser.skip(pos)
        if data.startswith(b"stream", after):
            if not isinstance(value, dict):
                raise PDFError(f"stream without a dictionary at byte {after}")
            start = after + 6
            if data.startswith(b"\r\n", start):
                start += 2
            elif data[start : start + 1] in (b"\n", b"\r"):
                start += 1
            length = self.resolve(value.get("Length"))
            if not isinstance(length, int) or length < 0 or start + length > len(data):
                raise PDFError(f"bad stream /Length at byte {after}")
            if not data.startswith(b"endstream", parser.skip(start + length)):
                raise PDFError(f"stream at byte {after} does not end where its /Length says")
            value = Stream(value, data[start : start + length])
        return int(header.group(1)), value

    def resolve(self, value):
        """VALUE itself, or the object it refers to (None for a missing or free object)."""
        if not isinstance(value, Ref):
            return value
        number = value.number
        if number in self._cache:
            return self._cache[number]
        entry = self._xref.get(number)
        if entry is None or entry[0] == "f":
            return None
        if number in self._resolving:
            raise PDFError(f"object {number} refers to itself")
        self._resolving.add(number)
        try:
            if entry[0] == "n":
                found, obj = self._indirect_at(entry[1])
                if found != number:
                    raise PDFError(f"the cross-reference points object {number} at object {found}")
            else:
                obj = self._from_object_stream(entry[1], entry[2], number)
        finally:
            self._resolving.discard(number)
        self._cache[number] = obj
        return obj

    def _from_object_stream(self, stream_number: int, index: int, number: int):
        if stream_number not in self._object_streams:
            stream = self.resolve(Ref(stream_number))
            if not isinstance(stream, Stream) or stream.dict.get("Type") != "ObjStm":
                raise PDFError(f"object {stream_number} is not an object stream")
            count, first = stream.dict.get("N"), stream.dict.get("First")
            if not isinstance(count, int) or not isinstance(first, int) or count < 0:
                raise PDFError(f"object stream {stream_number} has a bad /N or /First")
            body = _decode(stream, self.max_stream_bytes)
            header = [int(n) for n in re.findall(rb"\d+", body[:first])]
            if len(header) < 2 * count:
                raise PDFError(f"object stream {stream_number} has a short header")
            self._object_streams[stream_number] = (_Parser(body), header[: 2 * count], first)
        parser, header, first = self._object_streams[stream_number]
        if not 0 <= index < len(header) // 2 or header[2 * index] != number:
            raise PDFError(f"object {number} is not where its object stream's header says")
        value, _ = parser.value(first + header[2 * index + 1])
        return value

    def stream_bytes(self, value) -> bytes:
        """The decoded bytes of the stream VALUE (or the stream it refers to)."""
        stream = self.resolve(value)
        if not isinstance(stream, Stream):
            raise PDFError("expected a stream")
        return _decode(stream, self.max_stream_bytes)

    def dictionary(self, value, what: str) -> dict:
        resolved = self.resolve(value)
        if resolved is None:
            return {}
        if not isinstance(resolved, dict):
            raise PDFError(f"{what} is not a dictionary")
        return resolved

    # what reports need

    @property
    def info(self) -> dict:
        return self.dictionary(self.trailer.get("Info"), "the document information")

    def xmp(self) -> bytes | None:
        """The catalog's XMP metadata packet, or None."""
        if "Metadata" not in self.catalog:
            return None
        return self.stream_bytes(self.catalog["Metadata"])

    def associated_refs(self) -> list:
        """The catalog's /AF array (references to file specifications)."""
        af = self.resolve(self.catalog.get("AF"))
        if af is None:
            return []
        if not isinstance(af, list):
            raise PDFError("the catalog's /AF is not an array")
        return af

    def name_tree(self, root) -> list[tuple[bytes, object]]:
        """The (key, value) pairs of the name tree ROOT, in order."""
        out, seen = [], set()

        def walk(node, depth):
            if depth > MAX_DEPTH:
                raise PDFError("name tree nested too deep")
            if isinstance(node, Ref):
                if node.number in seen:
                    raise PDFError("name tree loops")
                seen.add(node.number)
            node = self.dictionary(node, "a name tree node")
            names = self.resolve(node.get("Names"))
            if names is not None:
                if not isinstance(names, list) or len(names) % 2:
                    raise PDFError("a name tree's /Names is not an array of pairs")
                for key, value in zip(names[::2], names[1::2]):
                    out.append((self.resolve(key), value))
            kids = self.resolve(node.get("Kids"))
            if kids is not None:
                if not isinstance(kids, list):
                    raise PDFError("a name tree's /Kids is not an array")
                for kid in kids:
                    walk(kid, depth + 1)

        walk(root, 0)
        return out

    def filespecs(self) -> list[tuple[object, dict, str]]:
        """Every file specification of the embedded files and /AF: (its reference or None, dict, key)."""
        names = self.dictionary(self.catalog.get("Names"), "the catalog's /Names")
        found, seen = [], set()
        if "EmbeddedFiles" in names:
            for key, value in self.name_tree(names["EmbeddedFiles"]):
                ref = value if isinstance(value, Ref) else None
                if ref is not None:
                    if ref in seen:
                        continue
                    seen.add(ref)
                found.append((ref, self.dictionary(value, "a file specification"), text(key) or ""))
        for value in self.associated_refs():
            if isinstance(value, Ref) and value in seen:
                continue
            if isinstance(value, Ref):
                seen.add(value)
            spec = self.dictionary(value, "a file specification")
            found.append((value if isinstance(value, Ref) else None, spec, text(spec.get("UF") or spec.get("F")) or ""))
        return found

    def embedded_files(self) -> list[EmbeddedFile]:
        """The files this PDF carries, in name-tree order (then any only the /AF array lists)."""
        associated = {ref for ref in self.associated_refs() if isinstance(ref, Ref)}
        out = []
        for ref, spec, key in self.filespecs():
            ef = self.dictionary(spec.get("EF"), "a file specification's /EF")
            target = ef.get("UF", ef.get("F"))
            if target is None:
                continue  # a reference to an external file: nothing is embedded
            stream = self.resolve(target)
            if not isinstance(stream, Stream):
                raise PDFError(f"embedded file {key!r} is not a stream")
            params = self.dictionary(stream.dict.get("Params"), "an embedded file's /Params")
            checksum = self.resolve(params.get("CheckSum"))
            size = self.resolve(params.get("Size"))
            subtype = stream.dict.get("Subtype")
            relationship = spec.get("AFRelationship")
            out.append(
                EmbeddedFile(
                    name=text(self.resolve(spec.get("UF") or spec.get("F"))) or key,
                    content=_decode(stream, self.max_stream_bytes),
                    media_type=str(subtype) if isinstance(subtype, Name) else None,
                    relationship=str(relationship) if isinstance(relationship, Name) else None,
                    description=text(self.resolve(spec.get("Desc"))) or "",
                    created=text(self.resolve(params.get("CreationDate"))),
                    modified=text(self.resolve(params.get("ModDate"))),
                    checksum=checksum if isinstance(checksum, bytes) else None,
                    declared_size=size if isinstance(size, int) else None,
                    associated=ref in associated,
                )
            )
        return out


# --- helpers for callers -------------------------------------------------------------------


def embedded_files(data: bytes) -> list[EmbeddedFile]:
    """List the files the PDF DATA carries, with their bytes; raise PDFError if it cannot be read."""
    return PDFFile(data).embedded_files()


def embedded_file(data: bytes, name: str) -> EmbeddedFile:
    """The one file named NAME that the PDF DATA carries; PDFError if it has none or several."""
    matches = [f for f in embedded_files(data) if f.name == name]
    if len(matches) != 1:
        raise PDFError(f"the PDF carries {len(matches)} files named {name!r}")
    return matches[0]


def report_digests(data: bytes) -> ReportDigests:
    """The SHA-256 of the PDF DATA and of each file it carries (the figures a report is issued with)."""
    files = embedded_files(data)
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise PDFError("the PDF carries two files with the same name")
    return ReportDigests(pdf=hashlib.sha256(data).hexdigest(), attachments={f.name: f.sha256 for f in files})


_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_XMP_NAMES = {
    "part": "{http://www.aiim.org/pdfa/ns/id/}part",
    "conformance": "{http://www.aiim.org/pdfa/ns/id/}conformance",
    "Title": "{http://purl.org/dc/elements/1.1/}title",
    "Author": "{http://purl.org/dc/elements/1.1/}creator",
    "Subject": "{http://purl.org/dc/elements/1.1/}description",
    "Keywords": "{http://ns.adobe.com/pdf/1.3/}Keywords",
    "Producer": "{http://ns.adobe.com/pdf/1.3/}Producer",
    "Creator": "{http://ns.adobe.com/xap/1.0/}CreatorTool",
    "CreationDate": "{http://ns.adobe.com/xap/1.0/}CreateDate",
    "ModDate": "{http://ns.adobe.com/xap/1.0/}ModifyDate",
}


def xmp_properties(packet: bytes) -> dict[str, str]:
    """The PDF/A identification and document-information properties of an XMP PACKET.

    Keys are those of ``_XMP_NAMES`` (``part``, ``conformance``, ``Title``, ...); a list or
    alternative reads as its items joined by ", " (the document information's convention).
    """
    if re.search(rb"<!(DOCTYPE|ENTITY)", packet):
        raise PDFError("the XMP packet declares a DTD or entities")
    body = re.sub(rb"^.*?(<x:xmpmeta|<rdf:RDF)", rb"\1", packet, count=1, flags=re.S)
    body = re.sub(rb"<\?xpacket end=[^>]*\?>\s*$", b"", body)
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise PDFError(f"the XMP packet is not XML: {exc}") from exc
    wanted = {v: k for k, v in _XMP_NAMES.items()}
    out = {}
    for description in root.iter(f"{_RDF}Description"):
        for attr, value in description.attrib.items():
            if attr in wanted:
                out[wanted[attr]] = value
        for child in description:
            if child.tag in wanted:
                items = [li.text or "" for li in child.iter(f"{_RDF}li")]
                out[wanted[child.tag]] = ", ".join(items) if items else (child.text or "").strip()
    return out


def _pdf_date_as_xmp(value: str) -> str | None:
    """The XMP form (``2025-01-02T03:04:05Z``) of a PDF date (``D:20250102030405Z``)."""
    match = re.fullmatch(r"D:(\d{4})(\d\d)?(\d\d)?(\d\d)?(\d\d)?(\d\d)?(Z|[+-]\d\d'?(?:\d\d'?)?)?", value.strip())
    if not match:
        return None
    y, mo, d, h, mi, s, tz = match.groups()
    return f"{y}-{mo or '01'}-{d or '01'}T{h or '00'}:{mi or '00'}:{s or '00'}{_zone(tz)}"


def _zone(tz: str | None) -> str:
    if tz in (None, "Z"):
        return "Z"
    digits = re.sub(r"[^0-9]", "", tz).ljust(4, "0")
    return "Z" if digits == "0000" else f"{tz[0]}{digits[:2]}:{digits[2:4]}"


def _xmp_date(value: str | None) -> str | None:
    match = value and re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?", value.strip())
    return f"{match.group(1)}{_zone(match.group(2))}" if match else value


def pdfa3b_problems(data: bytes) -> list[str]:
    """Check PDF/A-3b identification and associated files; return what is wrong (empty if nothing).

    Checks what a validator would refuse in how Custos writes reports — not the whole of ISO
    19005-3 (fonts, colour and content streams are WeasyPrint's part): the XMP packet says
    pdfaid:part 3 and conformance B; the document information agrees with it; the trailer has
    an /ID and the catalog an sRGB output intent for PDF/A; every embedded file is listed once in
    the catalog's /AF, with an allowed /AFRelationship, /F and /UF, a media type, a modification
    date, and bytes that match its recorded checksum and size.
    """
    try:
        pdf = PDFFile(data)
        problems = []
        packet = pdf.xmp()
        props = {} if packet is None else xmp_properties(packet)
        if packet is None:
            problems.append("the catalog has no XMP metadata stream")
        if props.get("part") != "3":
            problems.append(f"XMP pdfaid:part is {props.get('part')!r}, not '3'")
        if props.get("conformance") != "B":
            problems.append(f"XMP pdfaid:conformance is {props.get('conformance')!r}, not 'B'")
        info = pdf.info
        for key in ("Title", "Author", "Subject", "Keywords", "Producer", "Creator", "CreationDate", "ModDate"):
            if key not in info:
                continue
            value = text(pdf.resolve(info[key]))
            expected = props.get(key)
            if key in ("CreationDate", "ModDate"):
                value, expected = _pdf_date_as_xmp(value or ""), _xmp_date(expected)
            if expected != value:
                problems.append(f"document information /{key} {value!r} differs from the XMP's {expected!r}")
        ids = pdf.trailer.get("ID")
        if not (isinstance(ids, list) and len(ids) == 2 and all(isinstance(i, bytes) for i in ids)):
            problems.append("the trailer has no /ID of two strings")
        intents = pdf.resolve(pdf.catalog.get("OutputIntents")) or []
        if not isinstance(intents, list) or not any(
            pdf.dictionary(i, "an output intent").get("S") == "GTS_PDFA1" for i in intents
        ):
            problems.append("the catalog has no PDF/A output intent")
        af = pdf.associated_refs()
        if len(af) != len(set(af)):
            problems.append("the catalog's /AF lists a file more than once")
        listed = set(af)
        for ref, spec, key in pdf.filespecs():
            label = text(pdf.resolve(spec.get("UF") or spec.get("F"))) or key
            if ref is None or ref not in listed:
                problems.append(f"{label}: not an associated file (the catalog's /AF does not list it)")
            if spec.get("AFRelationship") not in RELATIONSHIPS:
                problems.append(f"{label}: /AFRelationship {spec.get('AFRelationship')!r} is not one PDF/A-3 allows")
            if "F" not in spec or "UF" not in spec:
                problems.append(f"{label}: the file specification lacks /F or /UF")
        for f in pdf.embedded_files():
            if not f.media_type:
                problems.append(f"{f.name}: the embedded file has no media type (/Subtype)")
            if not f.modified:
                problems.append(f"{f.name}: the embedded file has no /ModDate")
            if f.checksum_matches is False:
                problems.append(f"{f.name}: the bytes do not match the recorded /CheckSum or /Size")
        return problems
    except PDFError as exc:
        return [f"unreadable: {exc}"]
