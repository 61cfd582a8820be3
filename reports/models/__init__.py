from .reports import Report
from .sections import HumanSection

__all__ = ["HumanSection", "Report"]
