"""What a hostile commit holds, for the tests that make sure the runner refuses it."""

from __future__ import annotations

# Each line nine times the one before: 9**9 "lol"s, over 2 GB of JSON, in 342 bytes.
ANCHOR_BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{','.join([f'*{before}'] * 9)}]"
            for before, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)
