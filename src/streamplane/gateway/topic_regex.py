"""Topic regex subscriptions (KIP-848), confined to a tenant's namespace.

With the consumer group protocol a consumer may subscribe by regular expression, and the
broker's group coordinator matches it (RE2/J, whole name) against every topic of the
physical cluster. The gateway sends the broker ``<escaped prefix>(?:<regex>)`` instead: a
name that matches starts with the tenant's prefix, whatever the regex says, and what
follows the prefix matches the tenant's regex as written.

That holds only if the regex cannot close the group it is put in. So it must be a
well-formed regex on its own (checked with Python's ``re``, whose syntax agrees with RE2
on groups, classes and escapes) and may not use the constructs where the two could read it
differently: ``\\Q...\\E`` quoting and ``(?...)`` groups other than ``(?:`` (flags such
as ``(?x)`` change how the rest is parsed). Everything else is the broker's to accept
or refuse. Start anchors (``^orders.*``) are dropped: after the prefix they could never
match, and the prefix anchors the tenant's part already.
"""

from __future__ import annotations

import re

#: the opening of a group the confinement allows; any other "(?" is refused
_GROUP_OPENINGS = re.compile(r"\(\?(?!:)")


class RegexRefused(ValueError):
    """A regex the gateway cannot confine to the namespace; the message says why."""


def _escape(prefix: str) -> str:
    # RE2 takes a backslash before any punctuation as that character
    return "".join(c if c.isalnum() else "\\" + c for c in prefix)


def confine(prefix: str, regex: str) -> str:
    """The regex to send to the broker for a tenant's ``regex``."""
    if not regex:
        return regex  # an empty regex clears the regex subscription
    if "\\Q" in regex or "\\E" in regex:
        raise RegexRefused("\\Q...\\E quoting is not supported in topic regexes")
    if "\n" in regex or "\r" in regex:
        raise RegexRefused("a topic regex cannot span lines")
    if _GROUP_OPENINGS.search(_without_escapes(regex)):
        raise RegexRefused("only (?: groups are supported in topic regexes, not flags, "
                           "named groups or comments")
    try:
        re.compile(regex)
    except re.error as exc:
        raise RegexRefused(f"invalid topic regex {regex!r}: {exc}") from exc
    # "^orders.*" means "names starting with orders": the prefix anchors it now
    inner = _without_start_anchors(regex)
    try:
        re.compile(inner)
    except re.error as exc:
        raise RegexRefused(f"cannot confine the topic regex {regex!r}: {exc}") from exc
    return f"{_escape(prefix)}(?:{inner})"


def unconfine(prefix: str, regex: str | None) -> str | None:
    """The tenant's view of a regex the gateway confined (for describing groups)."""
    if not regex:
        return regex
    head = _escape(prefix) + "(?:"
    if regex.startswith(head) and regex.endswith(")"):
        return regex[len(head):-1]
    return regex


def _without_escapes(regex: str) -> str:
    """``regex`` with every escaped character blanked out (``\\(`` is not a group)."""
    return re.sub(r"\\.", "__", regex, flags=re.DOTALL)


def _without_start_anchors(regex: str) -> str:
    """Drop the ``^`` (and ``\\A``) outside classes: the tenant's regex matches a whole
    topic name, so each marks the start of the tenant's name, which after the prefix it
    can no longer match. librdkafka sends ``(^orders.*)`` for a ``^orders.*`` subscription."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            if regex[i:i + 2] != "\\A" or in_class:
                out.append(regex[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "]" and regex[i - 1] != "[" and regex[i - 2:i] != "[^":
                in_class = False
        elif c == "[":
            in_class = True
        elif c == "^":
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)
