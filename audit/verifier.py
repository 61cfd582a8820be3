"""Offline verifier of Custos evidence bundles: ``python -m audit.verifier BUNDLE --key VKEY``,
of release attestations: ``python -m audit.verifier --attestation FILE --key VKEY --artifact MODEL_FILE``,
and of the evidence a report carries: ``python -m audit.verifier --report FILE.pdf --key VKEY``.

Needs only the Python standard library and ``cryptography``: no Django, no database, no
network. It checks that the bundle's checkpoint is signed by a key you trust (``--key``, the
note verifier key ``<name>+<id>+<base64>`` or a file holding it), that every entry's bytes hash
to its stated hash, that every entry is included in that checkpoint's tree (or, for a complete
bundle, that all entries chain and hash to its root), and that every entry is signed by the
ledger key active at its position, as declared by the key entries the bundle carries.

With ``--attestation`` it checks that the DSSE envelope (docs/attestation.md) is signed by a
trusted key and that MODEL_FILE's SHA-256 is the artifact digest it attests.

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
from .attestation import AttestationError, load_envelope, verify_artifact
from .chain import KEY_REGISTERED, KEY_ROTATED, ChainError, ChainVerifier, declared_keys, unb64
from .note import NoteError, Verifier, open_checkpoint, parse_verifier_key

BUNDLE_FORMAT = "custos-evidence-bundle/1"


class BundleError(Exception):
    """The bundle does not verify; the message names the entry and the reason."""


@dataclass
class BundleReport:
    origin: str
    tree_size: int
    root: bytes
    entries: list[dict] = field(default_factory=list)
    complete: bool = False


def load_verifier_keys(values) -> list[Verifier]:
    """Parse each of VALUES as a verifier key, or as a file holding one per line."""
    out = []
    for value in values:
        path = Path(value)
        texts = path.read_text().split() if "+" not in value and path.is_file() else [value]
        out.extend(parse_verifier_key(t) for t in texts)
    return out


def _entry_bytes(item: dict) -> tuple[int, bytes, bytes, bytes, str]:
    try:
        return (
            int(item["seq"]),
            unb64(item["canonical"]),
            bytes.fromhex(item["entry_hash"]),
            unb64(item["signature"]),
            str(item["key_id"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"entry {item.get('seq') if isinstance(item, dict) else '?'}: malformed ({exc})") from exc


def verify_bundle(bundle: dict, trusted: list[Verifier]) -> BundleReport:
    """Verify an evidence bundle (a parsed JSON dict) against TRUSTED keys; raise BundleError if it fails."""
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"not a Custos evidence bundle (expected format {BUNDLE_FORMAT!r})")
    try:
        checkpoint = open_checkpoint(bundle["checkpoint"], trusted, origin=bundle.get("origin"))
    except (NoteError, KeyError, TypeError) as exc:
        raise BundleError(f"checkpoint: {exc}") from exc
    report = BundleReport(origin=checkpoint.origin, tree_size=checkpoint.size, root=checkpoint.root)
    items = bundle.get("entries")
    if not isinstance(items, list):
        raise BundleError("the bundle has no entry list")
    rows = sorted((_entry_bytes(item) for item in items), key=lambda r: r[0])
    if bundle.get("complete"):
        _verify_complete(rows, checkpoint, report)
    else:
        _verify_partial(rows, items, checkpoint)
    report.entries = [json.loads(canonical) for _, canonical, *_ in rows]
    return report


def _verify_complete(rows, checkpoint, report):
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
    report.complete = True


def _verify_partial(rows, items, checkpoint):
    proofs = {}
    for item in items:
        try:
            proofs[int(item["seq"])] = [bytes.fromhex(p) for p in item["inclusion_proof"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"entry {item.get('seq')}: missing or malformed inclusion proof") from exc
    # 1. every entry is what the checkpoint committed to
    contents = {}
    for seq, canonical, entry_hash, _sig, key_id in rows:
        if merkle.leaf_hash(canonical) != entry_hash:
            raise BundleError(f"entry {seq}: its content does not match its hash (the entry was altered)")
        try:
            content = json.loads(canonical)
        except ValueError as exc:
            raise BundleError(f"entry {seq}: its signed bytes are not JSON") from exc
        if content.get("seq") != seq or content.get("key_id") != key_id:
            raise BundleError(f"entry {seq}: its signed sequence number or key id differs from the bundle's")
        if not merkle.verify_inclusion(entry_hash, seq, checkpoint.size, proofs[seq], checkpoint.root):
            raise BundleError(f"entry {seq}: it is not included in the checkpoint's tree of {checkpoint.size}")
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
        "--report", metavar="FILE.pdf", help="A Custos report (PDF): verify the evidence bundle it carries instead."
    )
    parser.add_argument("--quiet", action="store_true", help="Print only the verdict.")
    return parser


def verify_attestation_files(attestation: str, artifact: str, trusted: list[Verifier]) -> int:
    """Verify a release attestation against the model file about to be deployed; return the exit status."""
    try:
        envelope = load_envelope(attestation)
    except (OSError, AttestationError) as exc:
        print(f"cannot read attestation {attestation}: {exc}", file=sys.stderr)
        return 2
    try:
        stmt = verify_artifact(envelope, trusted, artifact)
    except OSError as exc:
        print(f"cannot read artifact {artifact}: {exc}", file=sys.stderr)
        return 2
    except AttestationError as exc:
        print(f"FAILED: {exc}")
        return 1
    pred = stmt.get("predicate", {})
    subject = stmt["subject"][0]
    print(
        f"OK: {subject.get('name')} sha256:{subject['digest']['sha256']} is approved for "
        f"{pred.get('environment')} (release {pred.get('release_id')})"
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
        if args.bundle or args.attestation:
            print("--report needs no BUNDLE and no --attestation", file=sys.stderr)
            return 2
        return verify_report_file(args.report, trusted, quiet=args.quiet)
    if args.attestation:
        if not args.artifact or args.bundle:
            print("--attestation needs --artifact MODEL_FILE and no BUNDLE", file=sys.stderr)
            return 2
        return verify_attestation_files(args.attestation, args.artifact, trusted)
    if args.bundle is None:
        parser.print_usage(sys.stderr)
        print(
            "nothing to verify: give a BUNDLE, --attestation FILE --artifact MODEL_FILE, or --report FILE.pdf",
            file=sys.stderr,
        )
        return 2
    return verify_bundle_file(args.bundle, trusted, quiet=args.quiet)


def verify_bundle_file(path, trusted: list[Verifier], *, quiet: bool = False) -> int:
    """Verify the bundle at PATH and print the verdict; return the exit status."""
    try:
        bundle = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
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
    how = "complete chain" if report.complete else "inclusion proofs"
    print(
        f"OK: {len(report.entries)} entries verified ({how}) against the checkpoint of {report.origin} "
        f"at tree size {report.tree_size}, root {report.root.hex()}"
    )
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
    except ValueError as exc:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
