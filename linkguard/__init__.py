"""linkguard: find links in chat text, canonicalize them as a browser would, match them against lists."""

from linkguard.engine import Engine
from linkguard.verdict import Action, LinkVerdict, TextVerdict, UrlVerdict

__all__ = ["Action", "Engine", "LinkVerdict", "TextVerdict", "UrlVerdict"]
