"""Offline verifier of Custos evidence bundles: ``python -m audit.verifier BUNDLE --key VKEY``,
and of release attestations: ``python -m audit.verifier --attestation FILE --key VKEY --artifact MODEL_FILE
--environment ENV [--model NAME] [--model-version VERSION]``.

Needs only the Python standard library and ``cryptography``: no Django, no database, no
network. It checks that the bundle's checkpoint is signed by a key you trust (``--key``, the
note verifier key ``<name>+<id>+<base64>`` or a file holding it), that every entry's bytes hash
to its stated hash, that every entry is included in that checkpoint's tree (or, for a complete
bundle, that all entries chain and hash to its root), and that every entry is signed by the
ledger key active at its position, as declared by the key entries the bundle carries.

With ``--attestation`` it checks that the DSSE envelope (docs/attestation.md) is signed by a
trusted key, that MODEL_FILE's SHA-256 is the artifact digest it attests, and that it approves
the release for ENV (and of model NAME, version VERSION, when given).

Exit status: 0 when everything verifies, 1 when something does not (the first failure is
printed), 2 for unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import merkle
from .attestation import AttestationError, load_envelope, release_facts, verify_release
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
        "--environment",
        metavar="ENV",
        help="With --attestation (required): the environment being deployed to; the attestation must approve it.",
    )
    parser.add_argument("--model", metavar="NAME", help="With --attestation: the model name the release must be of.")
    parser.add_argument(
        "--model-version", metavar="VERSION", help="With --attestation: the model version the release must be of."
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
        print("nothing to verify: give a BUNDLE, or --attestation FILE --artifact MODEL_FILE", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
