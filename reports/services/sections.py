"""Record a person's text for an Annex IV item of a model: a new version, its digest ledgered."""

import hashlib

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.services import ledger_append
from governance.services.guards import recorded_user, require

from ..models import HumanSection
from ..rules.annex_iv import HUMAN_KEYS, ITEM_BY_KEY
from ..rules.kinds import ReportKind

SECTION_MAX_CHARS = 20_000


@transaction.atomic(durable=True)
def human_section_record(*, model, key: str, text: str, actor=None) -> HumanSection:
    """Record TEXT as the next version of Annex IV item KEY of MODEL, written by ACTOR."""
    return _human_section_record(model=model, key=key, text=text, actor=actor)


@transaction.atomic(savepoint=False)
def _human_section_record(*, model, key, text, actor) -> HumanSection:
    require(actor, "reports.add_humansection", model.business_unit, what="write technical documentation")
    if key not in HUMAN_KEYS:
        raise ValidationError(f"Annex IV item {key!r} is not one a person writes; one of {', '.join(HUMAN_KEYS)}.")
    text = (text or "").strip()
    if not text:
        raise ValidationError("A section needs text; an item nobody wrote is shown as missing.")
    if len(text) > SECTION_MAX_CHARS:
        raise ValidationError(f"A section is at most {SECTION_MAX_CHARS} characters.")
    latest = HumanSection.objects.unrestricted().filter(model=model, key=key).select_for_update().order_by("-version").first()
    digest = hashlib.sha256(text.encode()).hexdigest()
    if latest is not None and latest.digest == digest:
        raise ValidationError("The text is the same as the current version.")
    version = (latest.version if latest else 0) + 1
    section = HumanSection(model=model, key=key, version=version, text=text, digest=digest,
                           author=recorded_user(actor), ledger_seq=0)
    section.save()
    entry = ledger_append(kind=ReportKind.HUMAN_SECTION_RECORDED, subject=section.ledger_subject,
                          payload={"model_id": model.pk, "item": ITEM_BY_KEY[key].label, "version": version,
                                   "text_sha256": digest}, actor=actor)
    HumanSection.objects.unrestricted().filter(pk=section.pk).update(ledger_seq=entry.seq)
    section.ledger_seq = entry.seq
    return section
