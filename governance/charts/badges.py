"""A verdict as a person reads it: worded and coloured, one small HTML element, the same in the
admin's pages, its template tags and the reports (every text is XML-escaped)."""

from xml.sax.saxutils import escape

from ..gates.policy import VERDICT_LABELS, VERDICT_TONES

TONE_COLOURS = {"good": "#1a7f37", "bad": "#b42318", "warn": "#9a6700", "none": "#57606a"}


def verdict_badge(verdict) -> str:
    """HTML of VERDICT ("passed", "not_applicable", …); "—" for none yet."""
    if not verdict:
        return "—"
    verdict = str(verdict)
    colour = TONE_COLOURS[VERDICT_TONES.get(verdict, "none")]
    text = VERDICT_LABELS.get(verdict, verdict)
    return (f'<strong class="verdict verdict-{escape(verdict)}" data-verdict="{escape(verdict)}" '
            f'style="color:{colour}">{escape(text)}</strong>')
