"""What every core command needs besides a session: the covenant and the region's keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property
from zoneinfo import ZoneInfo

from core.clock import local_date, utcnow
from core.covenant import Covenant, load_covenant
from core.errors import InvalidInput
from core.free_text import quote
from core.identity import IdentityKeys
from core.settings import Settings
from core.working_days import WorkingCalendar


@dataclass(frozen=True)
class CoreConfig:
    covenant: Covenant
    keys: IdentityKeys
    # Settings.informing_reminder_days: working days before a not-informed signal's reminder.
    informing_reminder_days: int = 5

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.covenant.region.timezone)

    @cached_property
    def calendar(self) -> WorkingCalendar:
        """The region's working days: the statutory ones minus its closing days."""
        return WorkingCalendar.for_region(self.covenant.region.closing_days, self.tz)

    def response_working_days(self, code: str) -> int:
        signal_code = self.covenant.signal_code(code)
        if signal_code is None:
            known = ", ".join(c.code for c in self.covenant.signal_codes)
            raise InvalidInput(
                f"onbekende signaalcode {quote(code)} (bekend: {known})", field="Code"
            )
        return signal_code.response_working_days

    def code_label(self, code: str) -> str:
        signal_code = self.covenant.signal_code(code)
        return signal_code.label if signal_code else code

    def today(self) -> date:
        return local_date(utcnow(), self.tz)


def build_config(settings: Settings) -> CoreConfig:
    covenant = load_covenant(settings.covenant_path)
    return CoreConfig(
        covenant=covenant,
        keys=IdentityKeys(settings.keyring()),
        informing_reminder_days=settings.informing_reminder_days,
    )
