"""The real control plane of the test ground: its pinned Go modules, build and launcher."""
