"""Demo data for a first run (`manage.py demo`), kept out of the product code: the German credit
data with synthetic applicant ids, the models trained on it, and the steps that register them.

Steps are registered by dotted path and order, so that an app registers its own in
``AppConfig.ready()`` without importing anything heavy at every Django start, and apps above
governance (monitoring, reports) add theirs without governance importing them.
"""

from django.utils.module_loading import import_string

_STEPS: dict[str, int] = {}


def register_demo_step(dotted_path: str, *, order: int) -> None:
    """Run the step at DOTTED_PATH (a function of the command's ``out`` writer) at ORDER in the demo."""
    _STEPS[dotted_path] = order


def demo_step_paths() -> list[str]:
    """The dotted paths of the registered steps, in their order (nothing imported)."""
    return [path for path, _ in sorted(_STEPS.items(), key=lambda item: (item[1], item[0]))]


def demo_steps() -> list:
    """The registered steps, in their order (imported now, when the demo runs)."""
    return [import_string(path) for path in demo_step_paths()]
