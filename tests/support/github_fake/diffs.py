"""What changed between commits, in GitHub's shapes: the ``files`` of "Get a commit" and the
answer of "Compare two commits".

GitHub's documentation (docs.github.com/rest/commits/commits): a commit's ``files`` hold at
most 300 entries per page; a comparison of ``BASE...HEAD`` diffs the merge base with HEAD, lists
at most 250 commits (the newest last) without paging parameters, and "the list of changed files
is only shown on the first page of results, and it includes up to 300 changed files for the
entire comparison" - with no flag saying it was cut. ``status`` is ``ahead``, ``behind``,
``diverged`` or ``identical``; a diff entry's ``status`` here is ``added``, ``removed`` or
``modified`` (the fake detects no renames or copies).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable
from urllib.parse import quote

from .repos import Commit, Repository

MAX_FILES = 300
MAX_COMMITS = 250


def ancestry(repo: Repository, commit: Commit) -> list[Commit]:
    """``commit`` and its ancestors, newest first (the fake's history has one parent each)."""
    chain = [commit]
    while chain[-1].parent is not None:
        chain.append(repo.commits[chain[-1].parent])
    return chain


def changed_files(
    repo: Repository, api: str, old: Commit | None, new: Commit
) -> list[dict[str, object]]:
    """GitHub's diff entries from ``old`` (None: the empty tree) to ``new``, by path, uncapped."""
    before = old.files if old is not None else {}
    entries = []
    for path in sorted(before.keys() | new.files.keys()):
        was, now = before.get(path), new.files.get(path)
        if was == now:
            continue
        status = "added" if was is None else "removed" if now is None else "modified"
        entries.append(_entry(repo, api, new, path, status, was, now))
    return entries


def stats(entries: list[dict[str, object]]) -> dict[str, int]:
    """A commit's ``stats``: lines added and deleted over all its files."""
    added = sum(e["additions"] for e in entries if isinstance(e["additions"], int))
    removed = sum(e["deletions"] for e in entries if isinstance(e["deletions"], int))
    return {"total": added + removed, "additions": added, "deletions": removed}


def comparison(
    repo: Repository,
    api: str,
    base: Commit,
    head: Commit,
    commit_payload: Callable[[Commit], dict[str, object]],
) -> dict[str, object] | None:
    """The answer to ``compare/{base}...{head}``; None when they share no history (GitHub
    then answers 404 "No common ancestor")."""
    from_head, from_base = ancestry(repo, head), ancestry(repo, base)
    base_shas = {c.sha for c in from_base}
    merge_base = next((c for c in from_head if c.sha in base_shas), None)
    if merge_base is None:
        return None
    ahead = from_head[: from_head.index(merge_base)]
    head_shas = {c.sha for c in from_head}
    behind = [c for c in from_base if c.sha not in head_shas]
    if not ahead and not behind:
        status = "identical"
    else:
        status = "ahead" if not behind else "behind" if not ahead else "diverged"
    html = f"https://github.com/{repo.full_name}"
    basehead = f"{base.sha}...{head.sha}"
    return {
        "url": f"{api}/repos/{repo.full_name}/compare/{basehead}",
        "html_url": f"{html}/compare/{basehead}",
        "permalink_url": f"{html}/compare/{repo.owner}:{base.sha}...{repo.owner}:{head.sha}",
        "diff_url": f"{html}/compare/{basehead}.diff",
        "patch_url": f"{html}/compare/{basehead}.patch",
        "base_commit": commit_payload(base),
        "merge_base_commit": commit_payload(merge_base),
        "status": status,
        "ahead_by": len(ahead),
        "behind_by": len(behind),
        "total_commits": len(ahead),
        "commits": [commit_payload(c) for c in reversed(ahead)][-MAX_COMMITS:],
        "files": changed_files(repo, api, merge_base, head)[:MAX_FILES],
    }


def _entry(
    repo: Repository,
    api: str,
    new: Commit,
    path: str,
    status: str,
    was: bytes | None,
    now: bytes | None,
) -> dict[str, object]:
    content = now if now is not None else was or b""
    blob = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
    lines_was = _lines(was)
    lines_now = _lines(now)
    entry: dict[str, object] = {
        "sha": blob,
        "filename": path,
        "status": status,
        "additions": 0,
        "deletions": 0,
        "changes": 0,
        "blob_url": f"https://github.com/{repo.full_name}/blob/{new.sha}/{quote(path)}",
        "raw_url": f"https://github.com/{repo.full_name}/raw/{new.sha}/{quote(path)}",
        "contents_url": f"{api}/repos/{repo.full_name}/contents/{quote(path)}?ref={new.sha}",
    }
    if lines_was is not None and lines_now is not None:  # text: a patch, as GitHub gives one
        diff = list(difflib.unified_diff(lines_was, lines_now, lineterm="", n=3))[2:]
        added = sum(1 for d in diff if d.startswith("+"))
        removed = sum(1 for d in diff if d.startswith("-"))
        entry.update(additions=added, deletions=removed, changes=added + removed)
        entry["patch"] = "\n".join(diff)
    return entry


def _lines(content: bytes | None) -> list[str] | None:
    """The text lines of a file (none for an absent one); None for binary content."""
    if content is None:
        return []
    try:
        return content.decode().splitlines()
    except UnicodeDecodeError:
        return None
