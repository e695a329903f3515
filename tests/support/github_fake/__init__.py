"""A fake of the few GitHub REST endpoints the ci-runner uses, served over real HTTP.

See README.md for what it fakes and what not.
"""

from .fake import GitHubFake, Request

__all__ = ["GitHubFake", "Request"]
