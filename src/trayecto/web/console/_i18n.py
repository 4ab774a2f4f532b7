"""Languages of the console: gettext catalogs (Babel ``.po`` files shipped in the package,
compiled in memory at start, so a fresh clone needs no build step), the choice of language
for a request, and locale-aware formatting of dates, numbers and money in the shop's zone.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from babel import Locale
from babel.dates import format_date, format_skeleton, format_time, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import Translations

from trayecto import access
from trayecto.kernel import utcnow

__all__ = [
    "DEFAULT_LOCALE",
    "LOCALES",
    "N_",
    "Formatter",
    "from_accept_language",
    "load_translations",
]

LOCALES: tuple[str, ...] = access.LOCALES
DEFAULT_LOCALE = "es"


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated later, where it is shown."""
    return message


def load_translations() -> dict[str, Translations]:
    """Every shipped catalog, read from its ``.po`` file and compiled in memory."""
    root = resources.files("trayecto.web").joinpath("locales")
    out: dict[str, Translations] = {}
    for locale in LOCALES:
        po = root.joinpath(locale, "LC_MESSAGES", "messages.po")
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=locale, domain="messages")
        buf = io.BytesIO()
        write_mo(buf, catalog)  # fuzzy entries are left out, as msgfmt does
        buf.seek(0)
        out[locale] = Translations(fp=buf, domain="messages")
    return out


def from_accept_language(header: str | None) -> str | None:
    """The first shipped language the browser asks for (``es-ES,es;q=0.9,en;q=0.8``)."""
    if not header:
        return None
    prefs: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang and q > 0:
            prefs.append((-q, i, lang))
    for _, _, lang in sorted(prefs):
        if lang in LOCALES:
            return lang
    return None


@dataclass(frozen=True)
class Formatter:
    """Formatting for one language in the configured time zone."""

    locale: str
    tz: ZoneInfo

    def _dt(self, value: datetime | str | None) -> datetime | None:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def when(self, value: datetime | str | None) -> str:
        """``5 oct 2026, 11:00`` / ``Oct 5, 2026, 11:00 AM`` in the shop's zone."""
        dt = self._dt(value)
        if dt is None:
            return "—"
        day = format_skeleton("yMMMd", dt, tzinfo=self.tz, locale=self.locale)
        hour = format_time(dt, "short", tzinfo=self.tz, locale=self.locale)
        pattern: str = Locale.parse(self.locale).datetime_formats["medium"]
        return pattern.replace("{1}", day).replace("{0}", hour)

    def date(self, value: datetime | str | None) -> str:
        """``5 oct 2026`` / ``Oct 5, 2026`` in the shop's zone."""
        dt = self._dt(value)
        if dt is None:
            return "—"
        return format_skeleton("yMMMd", dt, tzinfo=self.tz, locale=self.locale)

    def iso(self, value: datetime | str | None) -> str:
        dt = self._dt(value)
        return dt.astimezone(self.tz).isoformat(timespec="minutes") if dt else ""

    def ago(self, value: datetime | str | None) -> str:
        """``hace 3 días`` / ``3 days ago``."""
        dt = self._dt(value)
        if dt is None:
            return "—"
        return format_timedelta(
            dt - utcnow(), add_direction=True, threshold=1.0, locale=self.locale
        )

    def day(self, value: datetime | str | None) -> str:
        """A calendar day with its weekday, for grouping the timeline."""
        dt = self._dt(value)
        if dt is None:
            return "—"
        return format_skeleton("yMMMMEd", dt, tzinfo=self.tz, locale=self.locale)

    def date_value(self, value: str) -> str:
        """An ISO date (a birth date) written out; anything else as it is."""
        try:
            return format_date(date.fromisoformat(value), "long", locale=self.locale)
        except ValueError:
            return value

    def number(self, value: int | float) -> str:
        return format_decimal(value, locale=self.locale)

    def signed(self, value: float) -> str:
        """``+2,7`` / ``-0,4`` / ``0,0``: a weight of evidence, one decimal, with its sign."""
        if abs(value) < 0.05:
            return format_decimal(0, "0.0", locale=self.locale)
        return format_decimal(value, "+#,##0.0;-#,##0.0", locale=self.locale)

    def cost(self, value: float) -> str:
        """``20,61`` / ``20.61``: a sourcing cost (scoring units, not money), two decimals."""
        return format_decimal(value, "#,##0.00", locale=self.locale)

    def percent(self, value: float) -> str:
        """``97,4 %`` / ``97.4%``, one decimal; below 1 never rounded up to 100."""
        pattern = Locale.parse(self.locale).percent_formats[None].pattern
        shown = min(value, 0.999) if value < 1 else value
        return format_percent(shown, pattern.replace("#,##0", "#,##0.0", 1), locale=self.locale)

    def money(self, amount: Any, currency: str | None) -> str:
        try:
            value = Decimal(str(amount))
        except (InvalidOperation, ValueError):
            return str(amount)
        if not currency:
            return format_decimal(value, locale=self.locale)
        return format_currency(value, currency, locale=self.locale)

    @staticmethod
    def phone(value: str) -> str:
        """``+34600112233`` → ``+34 600 11 22 33``."""
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            return value
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
