"""The covenant (*convenant*): the region's parties, signal codes and coordination rules.

Exceptions::

    CovenantError          the file is unusable; .problems lists every CovenantProblem
                           (path like "professionals[4].team", the item it lies in, a Dutch
                           message), value and reference problems in one pass; str() one per
                           line
"""

from core.covenant.loader import bundled_covenant_path, load_covenant, load_covenant_text
from core.covenant.problems import CovenantError, CovenantProblem
from core.covenant.schema import (
    INSTITUTION_KINDS,
    ROLES,
    CoordinationRule,
    Covenant,
    CovenantInstitution,
    CovenantMunicipality,
    CovenantProfessional,
    CovenantTeam,
    Region,
    SignalCode,
)

__all__ = [
    "INSTITUTION_KINDS",
    "ROLES",
    "CoordinationRule",
    "Covenant",
    "CovenantError",
    "CovenantInstitution",
    "CovenantMunicipality",
    "CovenantProblem",
    "CovenantProfessional",
    "CovenantTeam",
    "Region",
    "SignalCode",
    "bundled_covenant_path",
    "load_covenant",
    "load_covenant_text",
]
