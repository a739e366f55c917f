"""The README's and docs/'s links to each other lead somewhere: the file exists, and a #section is a heading in it.

The model's measurement record lives in docs/model.md and the README links into its sections by anchor; a renamed
heading would otherwise break a link silently.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def prose(page: Path) -> str:
    """The page without its fenced code blocks (shell examples hold brackets that are not links)."""
    return re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)


def anchors(page: Path) -> set[str]:
    """GitHub's anchor for each heading: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6} (.+)$", prose(page), flags=re.MULTILINE)
    return {
        "".join(char for char in heading.strip().lower() if char.isalnum() or char in " -_").replace(" ", "-")
        for heading in headings
    }


def local_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose(page)) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_local_links_lead_to_a_file_and_section(page):
    broken = []
    for target in local_links(page):
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor in {linked.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_the_readme_links_into_the_model_record():
    # Guards the check itself: were the link pattern to stop matching, every page would pass with nothing checked.
    links = local_links(ROOT / "README.md")
    assert "docs/model.md#how-isic-2017s-ranking-grows-with-training-images" in links
    assert "docs/deploy.md" in links


def test_a_missing_section_is_reported(tmp_path):
    (tmp_path / "other.md").write_text("# Title\n\n## PH² left out, at 320 px\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#ph²-left-out-at-320-px) [bad](other.md#gone) [gone](nowhere.md)\n")
    assert anchors(tmp_path / "other.md") == {"title", "ph²-left-out-at-320-px"}
    with pytest.raises(AssertionError, match=r"other.md#gone: no heading.*nowhere.md: no such file"):
        test_local_links_lead_to_a_file_and_section(page)
