"""What a gate run needs of its inputs, checked before anything runs: pure Python, no numpy.

The service refuses a submission with these reasons (a 4xx) before queueing it, from the
registered schema alone; the engine checks again on the data itself.

A reason names columns and counts, never a cell value of the snapshot: reasons are stored on the
run and served by the API, and a snapshot's cells are personal data (an unbounded list of label
values once carried every subject id of a snapshot into a run's reason).
"""

from ..rules.limits import quoted_list


class GateInputError(ValueError):
    """The evaluation set does not fit the model or the request (a clear, user-facing reason)."""


NUMERIC_TYPE_PREFIXES = ("int", "uint", "float", "double", "decimal", "number")


def is_numeric_type(kind) -> bool:
    return str(kind or "").lower().startswith(NUMERIC_TYPE_PREFIXES)


def input_problems(*, features, columns, label_column, sensitive_columns, label_values=None,
                   positive_label=None, intersections=(), binned_columns=(), column_types=None,
                   subject_column="", personal_columns=(), expected_types=None) -> list[str]:
    """Every reason why an evaluation set with COLUMNS cannot be used; [] if none.

    Pure, so a submission can be refused with a 4xx before anything runs: FEATURES (the
    model's input names, None if unknown), the label column, the sensitive columns, the
    policy's INTERSECTIONS (lists of sensitive columns), the BINNED_COLUMNS it gives cut
    points for and, if known, the COLUMN_TYPES ({name: type}), the label's distinct values,
    the snapshot's SUBJECT_COLUMN and PERSONAL_COLUMNS, and the EXPECTED_TYPES of the model's
    inputs ({name: type} of the data it was trained on)."""
    problems = []
    columns = list(columns)
    if subject_column:
        # A subject id identifies a person: as a label, an input or a group it would copy every
        # id into the figures and reasons of a run.
        if label_column == subject_column:
            problems.append(f"The label column {label_column!r} is the snapshot's subject column (it identifies "
                            "people): it cannot be a label.")
        if features is not None and subject_column in features:
            problems.append(f"The model reads the snapshot's subject column {subject_column!r} as an input: a "
                            "gate does not evaluate a model on the ids of people.")
        if subject_column in sensitive_columns:
            problems.append(f"The subject column {subject_column!r} cannot be a sensitive feature: every person "
                            "would be a group of their own.")
    if label_column != subject_column and label_column in personal_columns:
        problems.append(f"The label column {label_column!r} is declared personal on the snapshot: a gate's label is "
                        "the outcome the model predicts, not personal data about the applicant.")
    for inter in intersections:
        unknown = [c for c in inter if c not in sensitive_columns]
        if unknown:
            problems.append(
                f"The intersection {' & '.join(inter)} names {quoted_list(unknown)}, which is not among the sensitive "
                f"features checked ({quoted_list(sensitive_columns) or 'none'})."
            )
    for column in binned_columns:
        kind = str((column_types or {}).get(column, "")).lower()
        if kind and not is_numeric_type(kind):
            problems.append(f"The policy bins {column!r} with cut_points, but it holds {kind} values, not numbers.")
    if label_column not in columns:
        problems.append(f"The label column {label_column!r} is not in the evaluation data.")
    if features is not None:
        missing = [f for f in features if f not in columns]
        if missing:
            problems.append(f"The evaluation data lacks the model's input columns: {quoted_list(missing)}.")
        if label_column in features:
            problems.append(f"The label column {label_column!r} is one of the model's inputs.")
        for name in features:
            expected, found = (expected_types or {}).get(name), (column_types or {}).get(name)
            if expected and found and is_numeric_type(expected) and not is_numeric_type(found):
                problems.append(f"The column {name!r} holds {found} values; the model was trained on it as numbers "
                                f"({expected}).")
    absent = [c for c in sensitive_columns if c not in columns]
    if absent:
        problems.append(f"Sensitive features not in the evaluation data: {quoted_list(absent)}.")
    if label_values is not None and positive_label is not None:
        values = {str(v) for v in label_values}
        if str(positive_label) not in values:
            problems.append(f"The positive label {positive_label!r} does not occur in {label_column!r}.")
        if len(values) > 2:  # how many, never which: the values are the snapshot's cells
            problems.append(
                f"The label column {label_column!r} has {len(values):,} distinct values; a gate needs two classes."
            )
    return problems


def sensitive_specs(policy, declared_sensitive):
    """The sensitive features to check: the policy's, else the dataset's declared sensitive
    columns; numeric columns get the policy's ``cut_points`` where it names them."""
    fairness = policy["fairness"]  # a normalised policy
    specs = fairness["sensitive_features"] or [{"column": c} for c in declared_sensitive]
    cuts = fairness.get("cut_points", {})
    return [
        spec if spec.get("cut_points") or spec["column"] not in cuts else {**spec, "cut_points": cuts[spec["column"]]}
        for spec in specs
    ]
