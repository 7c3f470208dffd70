"""linkguard: find links in chat text, canonicalize them as a browser would, match them against lists."""

from linkguard import extract as _extract
from linkguard.engine import Engine
from linkguard.verdict import Action, LinkVerdict, TextVerdict, UrlVerdict

__all__ = ["COMPILED", "Action", "Engine", "LinkVerdict", "TextVerdict", "UrlVerdict"]

# Is the hot path compiled to C (setup.py: mypyc), or plain Python (LINKGUARD_PURE=1)?
COMPILED = not (_extract.__file__ or "").endswith(".py")
