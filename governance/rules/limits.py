"""Limits of what people write and submit, defined once for the services, the API and the admin."""

# A decision, revocation, legal hold or review carries a written justification of at least this
# many characters (after stripping white space): "ok" is not a reason an auditor can read.
JUSTIFICATION_MIN_LENGTH = 10

# A snapshot may have at most this many columns: the checks of an upload are linear, but a
# 260 KB header of 30,000 columns still costs every later reader (schema, gates, admin) dearly,
# and no tabular evaluation set of a governed model is that wide.
SNAPSHOT_MAX_COLUMNS = 2_000

# A message (a refusal, a gate run's reason, a log line) names at most this many items of a list
# (column names, model classes, groups); the rest are counted. A message is for a person to read,
# and an unbounded list once carried 2,091 subject ids into a gate run's reason.
QUOTED_ITEMS_MAX = 10
QUOTED_ITEM_MAX_LENGTH = 80


def quoted_list(items, *, limit: int = QUOTED_ITEMS_MAX, sep: str = ", ") -> str:
    """ITEMS joined for a message, at most LIMIT of them (each cut to a readable length), then
    "… and N more". Never give it cell values of a snapshot: say how many instead."""
    items = [str(i) for i in items]
    shown = [i if len(i) <= QUOTED_ITEM_MAX_LENGTH else i[:QUOTED_ITEM_MAX_LENGTH - 1] + "…" for i in items[:limit]]
    text = sep.join(shown)
    if len(items) > limit:
        text += f"{sep}… and {len(items) - limit:,} more"
    return text
