"""The reports steps of the demo (``manage.py demo``): one issued report of each kind, idempotent.

Registered in ``ReportsConfig.ready()`` after governance's steps; the documentation of the
passing credit model gets two human sections first (written by its data scientist and its
officer), so its completeness table shows all three states.
"""

from django.contrib.auth import get_user_model

from governance.selectors.erasure import erasure_request_list
from governance.selectors.gates import gate_runs_for

from .documents.reader import SYSTEM
from .models import HumanSection, Report
from .rules.documents import ALL_UNITS, DocumentKind
from .services.reports import report_render, report_request
from .services.sections import human_section_record

DEMO_SECTIONS = [
    ("dana.scientist", "1e", "Runs as a scikit-learn pipeline in the bank's scoring service: 2 vCPU, 4 GiB RAM, "
                             "no GPU; scoring one application takes under 5 ms."),
    ("colin.compliance", "5", "The model is covered by the Retail Credit model risk framework: risks are identified "
                              "at design review, gated before release (fairness by sex and age, accuracy), approved "
                              "by a validator and an officer, and reviewed quarterly."),
]


def issue_reports(out, **kwargs):
    User = get_user_model()
    run = gate_runs_for(SYSTEM).filter(status="passed", model_version__model__name="credit-scoring-gbm").first()
    if run is None:
        out("  reports: no passed gate run in the demo; nothing issued")
        return
    mv = run.model_version
    for username, key, text in DEMO_SECTIONS:
        if not HumanSection.objects.unrestricted().filter(model=mv.model, key=key).exists():
            human_section_record(model=mv.model, key=key, text=text, actor=User.objects.get(username=username))
    auditor = User.objects.filter(username="aude.auditor").first()
    wanted = [(DocumentKind.ANNEX_IV, mv.ledger_subject), (DocumentKind.DOSSIER, mv.ledger_subject),
              (DocumentKind.ML_BOM, mv.ledger_subject), (DocumentKind.INVENTORY, ALL_UNITS)]
    for kind, subject in wanted:
        issued = Report.objects.unrestricted().filter(kind=kind, about=subject, state=Report.State.ISSUED).first()
        if issued is None:
            # The demo waits for each rendering here rather than on a worker.
            issued = report_render(report_id=report_request(kind=kind, subject=subject, actor=auditor,
                                                            dispatch=False).pk)
        out(f"  report {issued.pk}: {kind.value} of {subject} sha256 {issued.sha256[:16]}…")




def issue_certificate(out, **kwargs):
    """The certificate of the demo's completed erasure request, issued by the officer who recorded it."""
    dpo = get_user_model().objects.filter(username="dora.dpo").first()
    done = erasure_request_list(user=dpo).filter(completed_at__isnull=False).first() if dpo else None
    if done is None:
        out("  reports: no completed erasure request in the demo; no certificate issued")
        return
    kind = DocumentKind.ERASURE_CERTIFICATE
    issued = Report.objects.unrestricted().filter(kind=kind, about=done.ledger_subject,
                                                  state=Report.State.ISSUED).first()
    if issued is None:
        issued = report_render(report_id=report_request(kind=kind, subject=done.ledger_subject, actor=dpo,
                                                        dispatch=False).pk)
    out(f"  report {issued.pk}: {kind.value} of {done.reference} sha256 {issued.sha256[:16]}…")
