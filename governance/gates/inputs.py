"""What a gate run needs of its inputs, checked before anything runs: pure Python, no numpy.

The service refuses a submission with these reasons (a 4xx) before queueing it, from the
registered schema alone; the engine checks again on the data itself.
"""


class GateInputError(ValueError):
    """The evaluation set does not fit the model or the request (a clear, user-facing reason)."""


NUMERIC_TYPE_PREFIXES = ("int", "uint", "float", "double", "decimal", "number")


def input_problems(*, features, columns, label_column, sensitive_columns, label_values=None,
                   positive_label=None, intersections=(), binned_columns=(), column_types=None) -> list[str]:
    """Every reason why an evaluation set with COLUMNS cannot be used; [] if none.

    Pure, so a submission can be refused with a 4xx before anything runs: FEATURES (the
    model's input names, None if unknown), the label column, the sensitive columns, the
    policy's INTERSECTIONS (lists of sensitive columns), the BINNED_COLUMNS it gives cut
    points for and, if known, the COLUMN_TYPES ({name: type}) and the label's distinct values."""
    problems = []
    columns = list(columns)
    for inter in intersections:
        unknown = [c for c in inter if c not in sensitive_columns]
        if unknown:
            problems.append(
                f"The intersection {' & '.join(inter)} names {', '.join(unknown)}, which is not among the sensitive "
                f"features checked ({', '.join(sensitive_columns) or 'none'})."
            )
    for column in binned_columns:
        kind = str((column_types or {}).get(column, "")).lower()
        if kind and not kind.startswith(NUMERIC_TYPE_PREFIXES):
            problems.append(f"The policy bins {column!r} with cut_points, but it holds {kind} values, not numbers.")
    if label_column not in columns:
        problems.append(f"The label column {label_column!r} is not in the evaluation data.")
    if features is not None:
        missing = [f for f in features if f not in columns]
        if missing:
            problems.append(f"The evaluation data lacks the model's input columns: {', '.join(missing)}.")
        if label_column in features:
            problems.append(f"The label column {label_column!r} is one of the model's inputs.")
    absent = [c for c in sensitive_columns if c not in columns]
    if absent:
        problems.append(f"Sensitive features not in the evaluation data: {', '.join(absent)}.")
    if label_values is not None and positive_label is not None:
        values = {str(v) for v in label_values}
        if str(positive_label) not in values:
            problems.append(f"The positive label {positive_label!r} does not occur in {label_column!r}.")
        if len(values) > 2:
            problems.append(
                f"The label column {label_column!r} has values other than two classes: {', '.join(sorted(values))}."
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
