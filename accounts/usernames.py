"""Usernames that only look like another are refused ("aliсe" with a Cyrillic "с" next to "alice").

Two checks, on the NFKC form Django already stores:
- no mixing of alphabets within one name (Latin with Cyrillic, Greek, …), the usual way to fake a name;
- no name that shares a *skeleton* with an existing user's: every character is replaced by a canonical member of its
  class of look-alikes (Unicode's confusables list, as shipped by confusable-homoglyphs), and case is folded,
  so that "a1ice", "aIice", "ALICE" and an all-Cyrillic "аlісе"-style name all collide with "alice".
Multi-character look-alikes ("rn" for "m") are not mapped.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from confusable_homoglyphs import confusables
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError


@lru_cache(maxsize=1)
def _canonical_characters() -> dict[str, str]:
    """Each character with look-alikes -> one representative of its class (an ASCII letter or digit where the
    class has one), from a union-find over the single-character pairs of the confusables list."""
    parent: dict[str, str] = {}

    def find(char: str) -> str:
        parent.setdefault(char, char)
        while parent[char] != char:
            parent[char] = parent[parent[char]]
            char = parent[char]
        return char

    for char, homoglyphs in confusables.confusables_data.items():
        for homoglyph in homoglyphs:
            other = homoglyph["c"].strip("\u200e\u200f")
            if len(char) == 1 and len(other) == 1:
                parent[find(char)] = find(other)

    classes: dict[str, list[str]] = {}
    for char in list(parent):
        classes.setdefault(find(char), []).append(char)
    canonical: dict[str, str] = {}
    for members in classes.values():
        ascii_members = sorted(m for m in members if m.isascii() and m.isalnum())
        representative = ascii_members[0] if ascii_members else min(members)
        for member in members:
            canonical[member] = representative
    return canonical


def _map(text: str) -> str:
    canonical = _canonical_characters()
    return "".join(canonical.get(char, char) for char in text)


def username_skeletons(username: str) -> frozenset[str]:
    """Two skeletons, since case folding and look-alikes interfere: capital "I" looks like "l" (map first), and
    "ALICE" is "alice" (fold first). Two names collide when they share one."""
    name = unicodedata.normalize("NFKC", username)
    return frozenset({_map(_map(name).casefold()), _map(name.casefold())})


def validate_username_not_confusable(username: str, *, exclude_pk: int | None = None) -> None:
    """Raise ValidationError when `username` mixes alphabets or looks like an existing user's name."""
    username = unicodedata.normalize("NFKC", username)
    if confusables.is_mixed_script(username):
        raise ValidationError(
            "A username may not mix letters from different alphabets (for example Latin and Cyrillic).",
            code="mixed_script",
        )
    skeletons = username_skeletons(username)
    users = get_user_model().objects.all()
    if exclude_pk is not None:
        users = users.exclude(pk=exclude_pk)
    # A scan of every name: look-alikes cannot be found by an index on the stored names. Fine for the number of
    # accounts this service has; a stored skeleton column would be the next step.
    for existing in users.values_list("username", flat=True).iterator():
        if username_skeletons(existing) & skeletons:
            raise ValidationError(
                "This username looks too much like an existing one. Please choose another.", code="confusable"
            )
