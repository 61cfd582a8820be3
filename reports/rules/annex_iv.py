"""The points of Annex IV of Regulation (EU) 2024/1689 (the AI Act, OJ L, 12.7.2024), as items.

Annex IV ("Technical documentation referred to in Article 11(1)") has nine points; points 1 and
2 have sub-items, (a) to (h) each. The wording below follows the Official Journal text, not the
Commission's 2021 proposal (whose point 1 had (a)-(g) with different content, and whose point 2
numbered the items differently). Each item says where Custos takes it from:

- ``evidence``: the name of a filler in ``reports.documents.annex_iv`` that writes the item
  from recorded evidence (registry, lineage, gate runs, releases, the ledger);
- ``human``: a person must write it (or add to the evidence); their text is a versioned
  ``HumanSection`` of the model under the item's key.

An item with neither evidence nor a person's text is shown as *missing*, never left blank.
"""

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    FILLED = "filled"  # filled from evidence
    WRITTEN = "written"  # written by a person
    MISSING = "missing"


@dataclass(frozen=True)
class Item:
    key: str  # "1a", "2g", "4"
    point: int
    label: str  # "1(a)", "4"
    text: str  # the Official Journal's words (abridged where marked with …)
    evidence: str | None = None  # filler name
    human: bool = False  # a person writes (or adds to) it


POINT_TITLES = {
    1: "A general description of the AI system",
    2: "A detailed description of the elements of the AI system and of the process for its development",
    3: "Detailed information about the monitoring, functioning and control of the AI system",
    4: "A description of the appropriateness of the performance metrics for the specific AI system",
    5: "A detailed description of the risk management system in accordance with Article 9",
    6: "A description of relevant changes made by the provider to the system through its lifecycle",
    7: "A list of the harmonised standards applied in full or in part",
    8: "A copy of the EU declaration of conformity referred to in Article 47",
    9: "A detailed description of the system in place to evaluate the AI system performance in the post-market phase",
}

ITEMS: tuple[Item, ...] = (
    Item("1a", 1, "1(a)", "its intended purpose, the name of the provider and the version of the system reflecting "
         "its relation to previous versions", evidence="purpose_and_versions", human=True),
    Item("1b", 1, "1(b)", "how the AI system interacts with, or can be used to interact with, hardware or software, "
         "including with other AI systems, that are not part of the AI system itself, where applicable", human=True),
    Item("1c", 1, "1(c)", "the versions of relevant software or firmware, and any requirements related to version "
         "updates", evidence="software_versions", human=True),
    Item("1d", 1, "1(d)", "the description of all the forms in which the AI system is placed on the market or put "
         "into service, such as software packages embedded into hardware, downloads, or APIs", human=True),
    Item("1e", 1, "1(e)", "the description of the hardware on which the AI system is intended to run", human=True),
    Item("1f", 1, "1(f)", "where the AI system is a component of products, photographs or illustrations showing "
         "external features, the marking and internal layout of those products", human=True),
    Item("1g", 1, "1(g)", "a basic description of the user-interface provided to the deployer", human=True),
    Item("1h", 1, "1(h)", "instructions for use for the deployer, and a basic description of the user-interface "
         "provided to the deployer, where applicable", human=True),
    Item("2a", 2, "2(a)", "the methods and steps performed for the development of the AI system, including, where "
         "relevant, recourse to pre-trained systems or tools provided by third parties and how those were used, "
         "integrated or modified by the provider", evidence="development_method", human=True),
    Item("2b", 2, "2(b)", "the design specifications of the system, namely the general logic of the AI system and "
         "of the algorithms; the key design choices including the rationale and assumptions made …; the main "
         "classification choices; what the system is designed to optimise for, and the relevance of the different "
         "parameters; the description of the expected output and output quality of the system; the decisions about "
         "any possible trade-off made regarding the technical solutions adopted to comply with the requirements set "
         "out in Chapter III, Section 2", evidence="design_parameters", human=True),
    Item("2c", 2, "2(c)", "the description of the system architecture explaining how software components build on "
         "or feed into each other and integrate into the overall processing; the computational resources used to "
         "develop, train, test and validate the AI system", evidence="architecture_lineage", human=True),
    Item("2d", 2, "2(d)", "where relevant, the data requirements in terms of datasheets describing the training "
         "methodologies and techniques and the training data sets used, including a general description of these "
         "data sets, information about their provenance, scope and main characteristics; how the data was obtained "
         "and selected; labelling procedures …, data cleaning methodologies …", evidence="datasets", human=True),
    Item("2e", 2, "2(e)", "assessment of the human oversight measures needed in accordance with Article 14, "
         "including an assessment of the technical measures needed to facilitate the interpretation of the outputs "
         "of AI systems by the deployers, in accordance with Article 13(3), point (d)", evidence="oversight_policy",
         human=True),
    Item("2f", 2, "2(f)", "where applicable, a detailed description of pre-determined changes to the AI system and "
         "its performance, together with all the relevant information related to the technical solutions adopted "
         "to ensure continuous compliance …", human=True),
    Item("2g", 2, "2(g)", "the validation and testing procedures used, including information about the validation "
         "and testing data used and their main characteristics; metrics used to measure accuracy, robustness and "
         "compliance with other relevant requirements …, as well as potentially discriminatory impacts; test logs "
         "and all test reports dated and signed by the responsible persons …", evidence="validation_tests"),
    Item("2h", 2, "2(h)", "cybersecurity measures put in place", human=True),
    Item("3", 3, "3", "in particular with regard to: its capabilities and limitations in performance, including "
         "the degrees of accuracy for specific persons or groups of persons on which the system is intended to be "
         "used and the overall expected level of accuracy in relation to its intended purpose; the foreseeable "
         "unintended outcomes and sources of risks …; the human oversight measures needed …; specifications on "
         "input data, as appropriate", evidence="performance_by_group", human=True),
    Item("4", 4, "4", "A description of the appropriateness of the performance metrics for the specific AI system",
         human=True),
    Item("5", 5, "5", "A detailed description of the risk management system in accordance with Article 9",
         human=True),
    Item("6", 6, "6", "A description of relevant changes made by the provider to the system through its lifecycle",
         evidence="lifecycle"),
    Item("7", 7, "7", "A list of the harmonised standards applied in full or in part the references of which have "
         "been published in the Official Journal of the European Union; where no such harmonised standards have "
         "been applied, a detailed description of the solutions adopted to meet the requirements set out in "
         "Chapter III, Section 2, including a list of other relevant standards and technical specifications applied",
         human=True),
    Item("8", 8, "8", "A copy of the EU declaration of conformity referred to in Article 47", human=True),
    Item("9", 9, "9", "A detailed description of the system in place to evaluate the AI system performance in the "
         "post-market phase in accordance with Article 72, including the post-market monitoring plan referred to in "
         "Article 72(3)", human=True),
)

ITEM_BY_KEY = {item.key: item for item in ITEMS}
HUMAN_KEYS = tuple(item.key for item in ITEMS if item.human)


def item_status(item: Item, *, has_evidence: bool, has_text: bool) -> Status:
    """An item is filled when evidence fills it, else written when a person wrote it, else missing."""
    if item.evidence and has_evidence:
        return Status.FILLED
    if item.human and has_text:
        return Status.WRITTEN
    return Status.MISSING


def completeness(statuses: dict[str, Status]) -> list[dict]:
    """Per point: its title and how many of its items are filled, written and missing."""
    rows = []
    for point, title in POINT_TITLES.items():
        keys = [i.key for i in ITEMS if i.point == point]
        counts = {s: sum(1 for k in keys if statuses[k] == s) for s in Status}
        rows.append({"point": point, "title": title, "items": len(keys),
                     "filled": counts[Status.FILLED], "written": counts[Status.WRITTEN],
                     "missing": counts[Status.MISSING],
                     "keys": [(ITEM_BY_KEY[k].label, statuses[k].value) for k in keys]})
    return rows
