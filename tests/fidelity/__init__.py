"""Fidelity tests: the emulator and the fake against the real clients, kubectl and helm."""
