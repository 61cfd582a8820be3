"""Offline verifier of Custos evidence bundles: ``python -m audit.verifier BUNDLE --key VKEY``,
of release attestations: ``python -m audit.verifier --attestation FILE --key VKEY --artifact MODEL_FILE
--environment ENV [--model NAME] [--model-version VERSION]``, and of the evidence a report carries:
``python -m audit.verifier --report FILE.pdf --key VKEY``.

Needs only the Python standard library and ``cryptography``: no Django, no database, no
network. It checks that the bundle's checkpoint is signed by a key you trust (``--key``, the
note verifier key ``<name>+<id>+<base64>`` or a file holding it), that the header's origin,
tree size and root hash are the checkpoint's and its key list the keys its key entries declare,
that every entry's bytes hash to its stated hash, that every entry is included in that
checkpoint's tree (or, for a complete bundle, that all entries chain from entry 0 and hash to
its root), that every entry is signed by the ledger key active at its position, as declared by
the key entries the bundle carries, and that every entry of a subject bundle is about one of
the subjects it names (or is a key entry). A field it does not check is refused, not ignored.

What a subject (partial) bundle proves: each entry in it is in the checkpoint's tree. It does
not prove that no entry about the subject was left out; only a complete bundle does.

With ``--attestation`` it checks that the DSSE envelope (docs/attestation.md) is signed by a
trusted key, that MODEL_FILE's SHA-256 is the artifact digest it attests, and that it approves
the release for ENV (and of model NAME, version VERSION, when given).

With ``--report`` it takes the evidence bundle out of a Custos report (a PDF/A-3b file carrying it
as the associated file ``evidence-bundle.json``, read by ``audit/pdf.py``), verifies it as above,
and prints the PDF's SHA-256 (what Custos ledgered when it issued the report) and the checkpoint
the evidence is consistent with.

Exit status: 0 when everything verifies, 1 when something does not (the first failure is
printed), 2 for unusable input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import merkle
from .attestation import AttestationError, load_envelope, release_facts, verify_release
from .chain import KEY_KINDS, KEY_REGISTERED, KEY_ROTATED, ChainError, ChainVerifier, declared_keys, unb64
from .note import NoteError, Verifier, open_checkpoint, parse_verifier_key

BUNDLE_FORMAT = "custos-evidence-bundle/1"


class BundleError(Exception):
    """The bundle does not verify; the message names the entry and the reason."""


# What a bundle may carry. Every field a reader might trust is checked against the signed
# checkpoint or the signed entries; a field outside these lists is refused, not ignored.
HEADER_FIELDS = frozenset(
    {"format", "origin", "subject", "subjects", "complete", "tree_size", "root_hash", "checkpoint", "keys", "entries"}
)
ENTRY_FIELDS = frozenset({"seq", "canonical", "entry_hash", "signature", "key_id", "inclusion_proof"})


@dataclass
class BundleReport:
    """What a bundle proved: the checkpoint, its entries (decoded), and whether they are all the ledger's.

    ``complete`` is True only when the entries were checked to be every entry up to the
    checkpoint. Otherwise ``subjects`` names what the entries are about, and the proof is that
    each is in the checkpoint's tree, not that no entry about those subjects was left out.
    """

    origin: str
    tree_size: int
    root: bytes
    entries: list[dict] = field(default_factory=list)
    complete: bool = False
    subjects: list[str] | None = None
    keys: list[str] = field(default_factory=list)


def load_verifier_keys(values) -> list[Verifier]:
    """Parse each of VALUES as a verifier key, or as a file holding one per line."""
    out = []
    for value in values:
        path = Path(value)
        texts = path.read_text().split() if "+" not in value and path.is_file() else [value]
        out.extend(parse_verifier_key(t) for t in texts)
    return out


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry_bytes(item: dict) -> tuple[int, bytes, bytes, bytes, str]:
    seq = item.get("seq") if isinstance(item, dict) else "?"
    try:
        if not _is_int(item["seq"]) or not isinstance(item["key_id"], str):
            raise TypeError("seq must be an integer and key_id a string")
        unknown = sorted(set(item) - ENTRY_FIELDS)
        if unknown:
            raise ValueError(f"it carries fields no verifier checks: {', '.join(unknown)}")
        return item["seq"], unb64(item["canonical"]), bytes.fromhex(item["entry_hash"]), unb64(item["signature"]), item["key_id"]
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"entry {seq}: malformed ({exc})") from exc


def _declared_subjects(bundle: dict) -> list[str] | None:
    """The subjects a bundle says its entries are about: ``subjects`` (a list), or the older single ``subject``."""
    if "subjects" in bundle and bundle.get("subject") is not None:
        raise BundleError("the bundle names both `subject` and `subjects`; a bundle names its subjects once")
    subjects = bundle["subjects"] if "subjects" in bundle else bundle.get("subject")
    if subjects is None:
        return None
    if isinstance(subjects, str):
        subjects = [subjects]
    if not isinstance(subjects, list) or not subjects or not all(isinstance(s, str) and s for s in subjects):
        raise BundleError("the bundle's subjects must be a non-empty list of subject names")
    return list(dict.fromkeys(subjects))


def _check_header(bundle: dict, checkpoint) -> None:
    """The header's tree size and root hash, if given, must be the signed checkpoint's."""
    if "tree_size" in bundle and (not _is_int(bundle["tree_size"]) or bundle["tree_size"] != checkpoint.size):
        raise BundleError(
            f"the header says tree size {bundle['tree_size']!r}, but the signed checkpoint's is {checkpoint.size}"
        )
    if "root_hash" in bundle:
        root = bundle["root_hash"]
        try:
            same = isinstance(root, str) and bytes.fromhex(root) == checkpoint.root
        except ValueError:
            same = False
        if not same:
            raise BundleError(
                f"the header says root hash {root!r}, but the signed checkpoint's is {checkpoint.root.hex()}"
            )


def _check_keys(listed, declared: dict[str, Verifier]) -> list[str]:
    """The header's key list, if given, must be exactly the keys the verified key entries declare."""
    texts = [v.text for v in declared.values()]
    if listed is None:
        return texts
    if not isinstance(listed, list) or not all(isinstance(k, str) for k in listed):
        raise BundleError("the bundle's keys must be a list of verifier keys")
    try:
        parsed = {parse_verifier_key(k).text for k in listed}
    except NoteError as exc:
        raise BundleError(f"the bundle lists a malformed verifier key: {exc}") from exc
    if parsed != set(texts):
        extra = sorted(k.split("+")[1] for k in parsed - set(texts))
        missing = sorted(k.split("+")[1] for k in set(texts) - parsed)
        raise BundleError(
            "the bundle's key list does not match the keys its key entries declare"
            + (f"; listed but declared by no entry in it: {', '.join(extra)}" if extra else "")
            + (f"; declared but not listed: {', '.join(missing)}" if missing else "")
        )
    return texts


def verify_bundle(bundle: dict, trusted: list[Verifier]) -> BundleReport:
    """Verify an evidence bundle (a parsed JSON dict) against TRUSTED keys; raise BundleError if it fails.

    Checks the checkpoint's signature; that every header field is the signed checkpoint's or
    follows from the verified entries; and the entries: a complete bundle must chain from entry
    0 and hash to the checkpoint's root, a subject bundle's entries must each be proven included
    in the checkpoint's tree, signed by the key active at their position, and be about a
    declared subject (or be one of the ledger's key entries).
    """
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"not a Custos evidence bundle (expected format {BUNDLE_FORMAT!r})")
    unknown = sorted(set(bundle) - HEADER_FIELDS)
    if unknown:
        raise BundleError(f"the bundle carries fields no verifier checks: {', '.join(unknown)}")
    origin = bundle.get("origin")
    if origin is not None and not isinstance(origin, str):
        raise BundleError("the bundle's origin must be a string")
    try:
        checkpoint = open_checkpoint(bundle["checkpoint"], trusted, origin=origin)
    except (NoteError, KeyError, TypeError) as exc:
        raise BundleError(f"checkpoint: {exc}") from exc
    _check_header(bundle, checkpoint)
    complete = bundle.get("complete", False)
    if not isinstance(complete, bool):
        raise BundleError("the bundle's `complete` must be true or false")
    subjects = _declared_subjects(bundle)
    if complete and subjects is not None:
        raise BundleError("a complete bundle holds every entry; it names no subject")
    if not complete and subjects is None:
        raise BundleError("a partial bundle must name the subject(s) its entries are about")
    report = BundleReport(origin=checkpoint.origin, tree_size=checkpoint.size, root=checkpoint.root, subjects=subjects)
    items = bundle.get("entries")
    if not isinstance(items, list):
        raise BundleError("the bundle has no entry list")
    rows = sorted((_entry_bytes(item) for item in items), key=lambda r: r[0])
    for (a, *_), (b, *_) in zip(rows, rows[1:]):
        if a == b:
            raise BundleError(f"entry {a}: it appears twice")
    if complete:
        declared = _verify_complete(rows, items, checkpoint)
    else:
        declared = _verify_partial(rows, items, checkpoint, subjects)
    report.keys = _check_keys(bundle.get("keys"), declared)
    report.complete = complete
    report.entries = [json.loads(canonical) for _, canonical, *_ in rows]
    return report


def _verify_complete(rows, items, checkpoint) -> dict[str, Verifier]:
    """Every entry from 0 up to the checkpoint, chained, hashing to its root; return the keys declared."""
    if any("inclusion_proof" in item for item in items):
        raise BundleError("a complete bundle's entries carry no inclusion proofs (the whole tree is recomputed)")
    verifier = ChainVerifier()
    try:
        for seq, canonical, entry_hash, signature, key_id in rows:
            verifier.add(canonical=canonical, entry_hash=entry_hash, signature=signature, key_id=key_id, seq=seq)
    except ChainError as exc:
        raise BundleError(str(exc)) from exc
    if verifier.size != checkpoint.size:
        raise BundleError(
            f"entry {verifier.size}: the bundle holds {verifier.size} entries but the checkpoint commits to {checkpoint.size}"
        )
    if verifier.root != checkpoint.root:
        raise BundleError("the entries do not hash to the checkpoint's root")
    return verifier.keys


def _verify_partial(rows, items, checkpoint, subjects) -> dict[str, Verifier]:
    """Each entry included in the checkpoint's tree, signed by the key active there, about a subject; return the keys."""
    proofs = {}
    for item in items:
        try:
            proofs[item["seq"]] = [bytes.fromhex(p) for p in item["inclusion_proof"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"entry {item.get('seq')}: missing or malformed inclusion proof") from exc
    # 1. every entry is what the checkpoint committed to, and about what the bundle says
    contents = {}
    for seq, canonical, entry_hash, _sig, key_id in rows:
        if merkle.leaf_hash(canonical) != entry_hash:
            raise BundleError(f"entry {seq}: its content does not match its hash (the entry was altered)")
        try:
            content = json.loads(canonical)
        except ValueError as exc:
            raise BundleError(f"entry {seq}: its signed bytes are not JSON") from exc
        if not isinstance(content, dict) or content.get("seq") != seq or content.get("key_id") != key_id:
            raise BundleError(f"entry {seq}: its signed sequence number or key id differs from the bundle's")
        if not merkle.verify_inclusion(entry_hash, seq, checkpoint.size, proofs[seq], checkpoint.root):
            raise BundleError(f"entry {seq}: it is not included in the checkpoint's tree of {checkpoint.size}")
        if content.get("kind") not in KEY_KINDS and content.get("subject") not in subjects:
            raise BundleError(
                f"entry {seq}: it is about {content.get('subject')!r}, which is not a subject the bundle names "
                f"({', '.join(subjects)})"
            )
        contents[seq] = content
    # 2. the keys: declared by key entries that are themselves proven included
    timeline = []  # (seq, key id that becomes active after this entry)
    keys: dict[str, Verifier] = {}
    for seq in sorted(contents):
        content = contents[seq]
        if content.get("kind") in (KEY_REGISTERED, KEY_ROTATED):
            try:
                (declared,) = declared_keys(content)
            except (NoteError, KeyError, TypeError, ValueError) as exc:
                raise BundleError(f"entry {seq}: it declares a malformed key ({exc})") from exc
            keys[declared.key_id] = declared
            timeline.append((seq, declared.key_id))
    if not timeline or timeline[0][0] != 0:
        raise BundleError("the bundle lacks the ledger's key entries (entry 0 registers the first key)")
    # 3. every entry is signed by the key active at its position
    for seq, canonical, _hash, signature, key_id in rows:
        active = None
        for key_seq, kid in timeline:
            if key_seq < seq or (key_seq == 0 and seq == 0):
                active = kid
        if key_id != active:
            raise BundleError(f"entry {seq}: signed with key {key_id}, but the active key there is {active}")
        if not keys[key_id].verify(canonical, signature):
            raise BundleError(f"entry {seq}: its signature does not verify")
    return keys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audit.verifier",
        description="Verify a Custos evidence bundle offline (standard library and cryptography only).",
    )
    parser.add_argument(
        "bundle", nargs="?", help="The evidence bundle (JSON) written by `manage.py ledger export`."
    )
    parser.add_argument(
        "--key",
        action="append",
        required=True,
        metavar="VKEY",
        help="A trusted note verifier key <name>+<id>+<base64>, or a file holding such keys. Repeatable.",
    )
    parser.add_argument("--attestation", metavar="FILE", help="A release attestation (DSSE envelope) to verify instead.")
    parser.add_argument("--artifact", metavar="MODEL_FILE", help="With --attestation: the model file it must be about.")
    parser.add_argument(
        "--environment",
        metavar="ENV",
        help="With --attestation (required): the environment being deployed to; the attestation must approve it.",
    )
    parser.add_argument("--model", metavar="NAME", help="With --attestation: the model name the release must be of.")
    parser.add_argument(
        "--model-version", metavar="VERSION", help="With --attestation: the model version the release must be of."
    )
    parser.add_argument(
        "--report", metavar="FILE.pdf", help="A Custos report (PDF): verify the evidence bundle it carries instead."
    )
    parser.add_argument("--quiet", action="store_true", help="Print only the verdict.")
    return parser


def verify_attestation_files(
    attestation: str,
    artifact: str,
    trusted: list[Verifier],
    *,
    environment: str,
    model: str | None = None,
    version: str | None = None,
) -> int:
    """Verify a release attestation against the model file about to be deployed to ENVIRONMENT; return the exit status."""
    try:
        envelope = load_envelope(attestation)
    except (OSError, AttestationError) as exc:
        print(f"cannot read attestation {attestation}: {exc}", file=sys.stderr)
        return 2
    try:
        stmt = verify_release(envelope, trusted, artifact, environment=environment, model=model, version=version)
    except OSError as exc:
        print(f"cannot read artifact {artifact}: {exc}", file=sys.stderr)
        return 2
    except AttestationError as exc:
        print(f"FAILED: {exc}")
        return 1
    pred = stmt.get("predicate", {})
    facts = release_facts(stmt)
    subject = stmt["subject"][0]
    print(
        f"OK: {subject.get('name')} sha256:{subject['digest']['sha256']} (model {facts['model']!r} version "
        f"{facts['version']!r}) is approved for {facts['environment']} (release {pred.get('release_id')})"
    )
    return 0


def main(argv=None) -> int:
    """Parse ARGV, run each check asked for, print verdicts; 0 if all hold, 1 if one fails, 2 on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        trusted = load_verifier_keys(args.key)
    except (NoteError, OSError) as exc:
        print(f"unusable --key: {exc}", file=sys.stderr)
        return 2
    if args.report:
        if args.bundle or args.attestation or args.artifact or args.environment or args.model or args.model_version:
            print("--report needs no BUNDLE and no --attestation (nor its --artifact, --environment, --model, "
                  "--model-version)", file=sys.stderr)
            return 2
        return verify_report_file(args.report, trusted, quiet=args.quiet)
    if args.attestation:
        if not args.artifact or args.bundle:
            print("--attestation needs --artifact MODEL_FILE and no BUNDLE", file=sys.stderr)
            return 2
        if not args.environment:
            print(
                "--attestation needs --environment ENV, the environment you are deploying to: an attestation "
                "approves one environment only (a staging approval is no approval for production)",
                file=sys.stderr,
            )
            return 2
        return verify_attestation_files(
            args.attestation,
            args.artifact,
            trusted,
            environment=args.environment,
            model=args.model,
            version=args.model_version,
        )
    if args.environment or args.model or args.model_version or args.artifact:
        print("--artifact, --environment, --model and --model-version go with --attestation", file=sys.stderr)
        return 2
    if args.bundle is None:
        parser.print_usage(sys.stderr)
        print(
            "nothing to verify: give a BUNDLE, --attestation FILE --artifact MODEL_FILE --environment ENV, "
            "or --report FILE.pdf",
            file=sys.stderr,
        )
        return 2
    return verify_bundle_file(args.bundle, trusted, quiet=args.quiet)


def verify_bundle_file(path, trusted: list[Verifier], *, quiet: bool = False) -> int:
    """Verify the bundle at PATH and print the verdict; return the exit status."""
    try:
        bundle = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as exc:  # json recurses per level: a deep file is unusable input
        print(f"cannot read bundle {path}: {exc}", file=sys.stderr)
        return 2
    try:
        report = verify_bundle(bundle, trusted)
    except BundleError as exc:
        print(f"FAILED: {exc}")
        return 1
    if not quiet:
        for content in report.entries:
            print(f"  #{content['seq']} {content['time']} {content['kind']} {content['subject']} by {content['actor']}")
    at = f"the checkpoint of {report.origin} at tree size {report.tree_size}, root {report.root.hex()}"
    if report.complete:
        print(f"OK: {len(report.entries)} entries verified (complete chain): every entry of the ledger up to {at}")
    else:
        print(f"OK: {len(report.entries)} entries verified (inclusion proofs) against {at}.")
        print(_what_it_proves(report))
    return 0


def verify_report_file(path, trusted: list[Verifier], *, quiet: bool = False) -> int:
    """Verify the evidence bundle the report PDF at PATH carries and print the verdict; return the exit status."""
    # Imported here, so that a deploy job that carries only the files attestations need still runs.
    try:
        from .pdf import EVIDENCE_BUNDLE_NAME, PDFError, PDFFile
    except ImportError:
        print("this copy of the verifier lacks audit/pdf.py, which --report needs", file=sys.stderr)
        return 2

    try:
        data = Path(path).read_bytes()
        pdf = PDFFile(data)
        files = pdf.embedded_files()
    except (OSError, PDFError) as exc:
        print(f"cannot read report {path}: {exc}", file=sys.stderr)
        return 2
    print(f"report {path} sha256:{hashlib.sha256(data).hexdigest()}")
    if pdf.revisions > 1:
        print(f"  note: the file was changed after it was written ({pdf.revisions} revisions; Custos writes one)")
    for f in files:
        print(f"  carries {f.name} ({f.relationship or 'no relationship'}, {f.media_type or 'no media type'}, "
              f"{len(f.content)} bytes) sha256:{f.sha256}")
    bundles = [f for f in files if f.name == EVIDENCE_BUNDLE_NAME]
    if len(bundles) != 1:
        print(f"FAILED: the report carries {len(bundles)} files named {EVIDENCE_BUNDLE_NAME}, not one")
        return 1
    if bundles[0].checksum_matches is False:
        print(f"FAILED: {EVIDENCE_BUNDLE_NAME}: its bytes do not match the checksum and size the PDF records")
        return 1
    try:
        bundle = json.loads(bundles[0].content)
    except (ValueError, RecursionError) as exc:
        print(f"cannot read {EVIDENCE_BUNDLE_NAME} in {path}: {exc}", file=sys.stderr)
        return 2
    try:
        report = verify_bundle(bundle, trusted)
    except BundleError as exc:
        print(f"FAILED: {EVIDENCE_BUNDLE_NAME}: {exc}")
        return 1
    if not quiet:
        for content in report.entries:
            print(f"  #{content['seq']} {content['time']} {content['kind']} {content['subject']} by {content['actor']}")
    how = "complete chain" if report.complete else "inclusion proofs"
    print(
        f"OK: the report's evidence ({len(report.entries)} entries, {how}) is consistent with the checkpoint of "
        f"{report.origin} at tree size {report.tree_size}, root {report.root.hex()}"
    )
    print(_what_it_proves(report))
    return 0


def _what_it_proves(report: BundleReport) -> str:
    """Say honestly what a verified bundle shows: all entries, or only that the ones it holds are in the tree."""
    if report.complete:
        return "These are every entry of the ledger up to that checkpoint."
    return (
        "Each of these entries is in that tree. A partial bundle does not prove that no entry about "
        f"{', '.join(report.subjects)} was left out; a complete bundle (ledger export without --subject) does."
    )


if __name__ == "__main__":
    sys.exit(main())
