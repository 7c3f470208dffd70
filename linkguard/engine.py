"""The public face: lists -> matcher; check_url / check_text / sanitize / explain.

An Engine is immutable ("changes are made by creating a new engine to replace it"). A reload
builds a new Engine, reusing the parsed lists it was not asked to reload, and the caller swaps
one reference. Nothing here imports aiohttp.

    text -> extract.find_links -> urls.canonicalize -> Matcher.match -> verdict.decide -> JSON
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from linkguard import extract, safebrowsing, urls
from linkguard.lists import (
    ListLoadError,
    ParsedList,
    iter_entries,
    load_lists,
    read_list_file,
    read_manifest,
)
from linkguard.matcher import Matcher, entry_matches, lookup_keys
from linkguard.verdict import (
    Action,
    LinkVerdict,
    ListRef,
    Sanitized,
    TextVerdict,
    UrlVerdict,
    decide,
    worst,
)

__all__ = ["DEFAULT_REPLACEMENT", "Engine", "ListInfo", "ListLoadError"]

DEFAULT_REPLACEMENT = "[link removed]"
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# A URL a check visited: its depth in the tree of embedded URLs, the URL, its canonical form.
_Node = tuple[int, str, urls.CanonicalURL | None]


@dataclass(frozen=True, slots=True)
class ListInfo:
    """What an admin may see of a loaded list (never its entries)."""

    name: str
    format: str
    action: str
    category: str
    overridable: bool
    path: str
    entries: int
    skipped: int
    sha256: str
    loaded_at: float  # Unix time

    @classmethod
    def of(cls, p: ParsedList) -> ListInfo:
        s = p.spec
        return cls(s.name, s.format.value, s.action.value, s.category, s.overridable,
                   str(s.path), p.entries, p.skipped, p.sha256, p.loaded_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "format": self.format, "action": self.action,
            "category": self.category, "overridable": self.overridable, "path": self.path,
            "entries": self.entries, "skipped": self.skipped, "sha256": self.sha256,
            "loaded_at": datetime.fromtimestamp(self.loaded_at, UTC).isoformat(),
        }


class _Utf16:
    """UTF-16 offsets of code-point offsets of one text, asked in increasing order (spans of
    links in order): each astral code point is counted once, not once a link."""

    def __init__(self, text: str) -> None:
        self.text, self.index, self.extra = text, 0, 0

    def __call__(self, index: int) -> int:
        if index < self.index:
            self.index = self.extra = 0
        self.extra += len(_ASTRAL.findall(self.text, self.index, index))
        self.index = index
        return index + self.extra


def _escalated(own: UrlVerdict, others: list[UrlVerdict]) -> UrlVerdict:
    """`own`, with the action, category and lists of the worst of `others` if that is worse (a
    link that leads to a worse URL is as bad as it); `own` itself otherwise."""
    if not others:
        return own
    top = max(others, key=lambda v: v.action.severity)
    if top.action.severity <= own.action.severity:
        return own
    return UrlVerdict(own.url, own.canonical, top.action, top.category, top.lists)


class Engine:
    __slots__ = ("_decisions", "_matcher", "_no_links", "_refs", "lists", "manifest", "parsed",
                 "version")

    def __init__(self, manifest: Path, parsed: tuple[ParsedList, ...]) -> None:
        self.manifest = manifest
        self.parsed = parsed
        self.lists = tuple(ListInfo.of(p) for p in parsed)
        ident = "\n".join(f"{p.spec!r} {p.sha256}" for p in parsed)
        self.version = hashlib.sha256(ident.encode()).hexdigest()[:12]
        self._matcher = Matcher(parsed)
        self._refs = tuple(ListRef(p.spec.name, p.spec.action, p.spec.category,
                                   p.spec.overridable) for p in parsed)
        self._no_links = TextVerdict(Action.ALLOW, (), self.version)
        # mask -> (action, category, lists): there are few distinct masks; computed on demand.
        self._decisions: dict[int, tuple[Action, str | None, tuple[str, ...]]] = {}

    @classmethod
    def from_manifest(cls, path: str | Path, *, previous: Engine | None = None,
                      reload: Iterable[str] | None = None, force: bool = False,
                      parallel: bool = False) -> Engine:
        """Load every list of the manifest. With `previous` and `reload`, only the named lists
        (and any whose manifest entry changed) are read again. Raises ListLoadError listing
        every problem as `file:line: reason`; nothing is half-loaded. Unless `force`, a list
        that would lose more than its `max_drop` share of entries (a truncated download) is
        refused. `parallel`: big lists are read on two cores, in a forked process (only from
        a process with no other thread: lists.load_lists)."""
        path = Path(path)
        specs = read_manifest(path)
        names = None if reload is None else set(reload)
        errors: dict[str, list[str]] = {}
        if names is not None and names - {s.name for s in specs}:
            errors[""] = [f"{path}:0: no list named {n!r}" for n in sorted(names - {s.name for s in specs})]
        kept = {p.spec: p for p in previous.parsed} if previous is not None else {}
        keep = [names is not None and spec.name not in names and spec in kept for spec in specs]
        loaded = iter(load_lists([s for s, k in zip(specs, keep) if not k], parallel))
        parsed = []
        for spec, k in zip(specs, keep):
            if k:
                parsed.append(kept[spec])
                continue
            new = next(loaded)
            if isinstance(new, ListLoadError):
                errors.update(new.by_list)
                continue
            parsed.append(new)
            old = previous.parsed_list(spec.name) if previous is not None else None
            if old is not None and not force and new.entries < old.entries * (1 - spec.max_drop):
                drop = 1 - new.entries / old.entries
                errors[spec.name] = [(
                    f"{spec.path}:0: would drop {drop:.0%} of the entries ({old.entries} -> "
                    f"{new.entries}; max_drop is {spec.max_drop:.0%}); reload with force to accept")]
        if errors:
            raise ListLoadError(errors)
        return cls(path, tuple(parsed))

    def parsed_list(self, name: str) -> ParsedList | None:
        return next((p for p in self.parsed if p.spec.name == name), None)

    # ---- verdicts ---------------------------------------------------------------------------

    def _decide(self, url: str, canonical: str, mask: int) -> UrlVerdict:
        if not mask:
            return UrlVerdict(url, canonical, Action.ALLOW)
        d = self._decisions.get(mask)
        if d is None:
            v = decide(url, canonical, (r for i, r in enumerate(self._refs) if mask >> i & 1))
            d = self._decisions[mask] = (v.action, v.category, v.lists)
        return UrlVerdict(url, canonical, d[0], d[1], d[2])

    def _check_tree(self, url: str, depth: int = 0, budget: list[int] | None = None,
                    trace: list[_Node] | None = None) -> list[UrlVerdict]:
        c = urls.canonicalize(url)
        if c is None:
            if trace is not None:
                trace.append((depth, url, None))
            return [UrlVerdict(url, None, Action.ALLOW)]
        return self._readings(url, c, depth, budget, trace)

    def _readings(self, url: str, c: urls.CanonicalURL, depth: int,
                  budget: list[int] | None = None, trace: list[_Node] | None = None
                  ) -> list[UrlVerdict]:
        """The URL's tree (_tree), and where Safari opens another host than the one WHATWG
        reads (urls.webkit_reading: only IDN hosts), that URL's tree too, as one the link leads
        to: it is reported after the others, and the link is as bad as it."""
        verdicts = self._tree(url, c, depth, budget, trace)
        if "xn--" in c.host and (safari := urls.webkit_reading(url)) is not None:
            alt = self._check_tree(safari, depth + 1, budget, trace)
            verdicts = [_escalated(verdicts[0], alt), *verdicts[1:], *alt]
        return verdicts

    def _tree(self, url: str, c: urls.CanonicalURL, depth: int, budget: list[int] | None = None,
              trace: list[_Node] | None = None) -> list[UrlVerdict]:
        """The URL's own verdict, then those of URLs embedded in its query: MAX_EMBED_DEPTH
        deep, MAX_EMBEDDED in all (`budget`, shared by the whole tree). A link that leads to a
        blocked URL is as bad as it: its verdict is the worst of them. One whose embedded URLs
        are not all checked (over the budget, or deeper) is flagged at least, never simply
        allowed. With `trace`, each URL checked is appended to it, in the order of the
        verdicts (for explain)."""
        if trace is not None:
            trace.append((depth, url, c))
        own = self._decide(url, c.text, self._matcher.match(c))
        if not c.query:
            return [own]
        embedded = urls.embedded_urls(c)
        if not embedded:
            return [own]
        if depth >= urls.MAX_EMBED_DEPTH:  # nested deeper than a check follows
            return [own if own.action is not Action.ALLOW else
                    UrlVerdict(url, own.canonical, Action.FLAG)]
        budget = budget or [urls.MAX_EMBEDDED]
        inner = []
        for e in embedded:
            if budget[0] <= 0:
                if own.action is Action.ALLOW:
                    own = UrlVerdict(url, own.canonical, Action.FLAG)
                break
            budget[0] -= 1
            inner += self._check_tree(e, depth + 1, budget, trace)
        return [_escalated(own, inner), *inner]

    def check_url(self, url: str) -> UrlVerdict:
        c = urls.canonicalize(url)
        if c is None:
            return UrlVerdict(url, None, Action.ALLOW)
        if c.query or "xn--" in c.host:
            return self._readings(url, c, 0)[0]
        return self._decide(url, c.text, self._matcher.match(c))

    def check_text(self, text: str, urls: Iterable[str] = ()) -> TextVerdict:
        """Every link in `text` (with its span) plus every URL in `urls` (client-marked
        entities, no span). The message verdict is the worst of its links."""
        if not text:  # URLs only (a batch of client-marked entities): nothing to extract
            marked = [LinkVerdict(v) for url in urls for v in self._check_tree(url)]
            if not marked:
                return self._no_links
            return TextVerdict(worst([link.verdict.action for link in marked]), tuple(marked),
                               self.version)
        candidates = extract.find_links(text)
        hidden = extract.markup_links(text, candidates)  # made by a Markdown/HTML renderer
        if not candidates and not urls and not hidden:
            return self._no_links  # most messages: one shared, immutable answer
        links: list[LinkVerdict] = []
        utf16 = None if text.isascii() else _Utf16(text)
        for cand in candidates:
            own, *inner = self._check_tree(cand.url)
            end = cand.end
            # Other readings of the link: the token taken whole (it may open another page, and
            # then the link spans the whole token: sanitize removes all of it), and the links
            # other clients make of the same text (extract.Candidate.others). If one is worse,
            # so is the link, and it spans that reading too.
            readings = () if cand.whole is None and not cand.others else (
                (cand.whole, cand.whole_end), *cand.others)
            for reading, reading_end in readings:
                if reading is not None and own.action is not Action.BLOCK:
                    alt = self._check_tree(reading)
                    if (worse := _escalated(own, alt)) is not own:
                        own = worse
                        inner += alt
                        end = max(end, reading_end)
            if not cand.linked and own.action is Action.ALLOW:
                continue  # only other linkifiers make it, and it is clean: not reported
            s16, e16 = (cand.start, end) if utf16 is None else (utf16(cand.start), utf16(end))
            links.append(LinkVerdict(own, cand.start, end, s16, e16))
            links += map(LinkVerdict, inner)
        for url in (*urls, *hidden):
            links += map(LinkVerdict, self._check_tree(url))
        action = worst([link.verdict.action for link in links])
        if action is Action.ALLOW and (len(candidates) >= extract.MAX_CANDIDATES or any(
                cand.whole_end < 0 for cand in candidates)):
            # Extraction stops at MAX_CANDIDATES, and tokens taken whole are checked up to a
            # budget: what is past them was not checked, so the message is never simply
            # allowed (padding a message with clean links is no bypass).
            action = Action.FLAG
        return TextVerdict(action, tuple(links), self.version)

    def sanitize(self, text: str, replacement: str = DEFAULT_REPLACEMENT) -> Sanitized:
        """The text with every blocked link replaced; offsets in the verdict refer to the input.
        If a blocked link that only a Markdown or HTML renderer makes is left (it has no place
        in the text to cut), the whole text is replaced."""
        verdict = self.check_text(text)
        cut = self.replace_links(text, verdict, replacement)
        if cut is None:
            return Sanitized(replacement, verdict, 1)
        sanitized, replaced = cut
        return Sanitized(sanitized, verdict, sum(r is not None for r in replaced))

    def replace_links(self, text: str, verdict: TextVerdict, replacement: str,
                      rewrite: Callable[[LinkVerdict], str | None] | None = None
                      ) -> tuple[str, list[str | None]] | None:
        """`text` (checked as `verdict`) with each blocked link that has a span replaced by
        `replacement`, and each other one by `rewrite(link)` unless that is None; and what
        replaced each link of the verdict (None: nothing). None when a blocked link that only a
        Markdown or HTML renderer makes is left (extract.markup_links): it has no span to cut,
        so the whole text must go. (sanitize, and /v1/rewrite's link shim.)"""
        out: list[str] = []
        replaced: list[str | None] = []
        pos = 0
        for link in verdict.links:
            new = None
            if link.start is not None and link.end is not None:
                new = replacement if link.action is Action.BLOCK else \
                    rewrite(link) if rewrite is not None else None
                if new is not None:
                    out += (text[pos:link.start], new)
                    pos = link.end
            replaced.append(new)
        out.append(text[pos:])
        result = "".join(out)
        if verdict.action is Action.BLOCK and any(  # the visible blocked links are cut already
                self.check_url(url).action is Action.BLOCK for url in extract.markup_links(result)):
            return None
        return result, replaced

    # ---- admin ------------------------------------------------------------------------------

    def explain(self, url: str) -> dict[str, Any]:
        """Why a URL gets its verdict: canonical form, lookup keys and every matching entry with
        its list and line, and the same for the URLs embedded in its query, as deep and as many
        as a check follows. Admin-only: it reveals list entries."""
        # The check's own walk: each URL it checked, with the verdict it gave, in order; a URL
        # comes after the one it is embedded in (depth one less).
        trace: list[_Node] = []
        verdicts = self._check_tree(url, trace=trace)
        path: list[dict[str, Any]] = []
        for (depth, u, c), verdict in zip(trace, verdicts, strict=True):
            node = self._explain_one(u, c, verdict)
            del path[depth:]
            if path:
                if u == urls.webkit_reading(path[-1]["url"]):  # not in its query: _readings
                    node["reading"] = ("the URL above as Safari opens it: WebKit maps U+1E9E "
                                       "to \"ss\" in a host, the others to \"\u00df\"")
                path[-1]["embedded"].append(node)
            path.append(node)
        return path[0]

    def _explain_one(self, url: str, c: urls.CanonicalURL | None, verdict: UrlVerdict
                     ) -> dict[str, Any]:
        out: dict[str, Any] = {"url": url, "canonical": verdict.canonical,
                               "safe_browsing_canonical": safebrowsing.canonical_url(url),
                               "verdict": verdict.to_json(), "keys": None, "matches": [],
                               "embedded": []}
        if c is None:
            out["reason"] = "no browser would open this URL, so it is not a link"
            return out
        if urls.whatwg_refuses(url):
            out["reading"] = ("the WHATWG parser refuses this URL; Chromium opens it at this "
                              "host (it unescapes a host again after mapping it)")
        keys = lookup_keys(c)
        out["keys"] = keys
        mask = self._matcher.match(c)
        digests = [(alg, hashlib.new(alg, e.encode()).digest())
                   for alg in ("sha256", "md5") for e in keys["expressions"]]
        for i, parsed in enumerate(self.parsed):
            if mask >> i & 1:
                out["matches"] += _matching_entries(parsed, c, keys, digests)
        return out


def _matching_entries(parsed: ParsedList, c: urls.CanonicalURL, keys: dict[str, list[str]],
                      digests: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """Re-read the list file to find which lines hold the matching keys: the index keeps no line
    numbers, which would cost memory on every entry for the sake of a rare admin request."""
    spec = parsed.spec
    data, text = read_list_file(spec)
    changed = hashlib.sha256(data).hexdigest() != parsed.sha256
    found = []
    for n, line, result in iter_entries(spec, text):
        if isinstance(result, Exception):
            continue
        if any(entry_matches(spec.index, k, c, keys, digests) for k in result):
            found.append({"list": spec.name, "line": n, "entry": line, "format": spec.format.value,
                          "action": spec.action.value, "category": spec.category,
                          "file_changed_since_load": changed})
    return found
