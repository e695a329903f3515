"""End-to-end tests: `ci-runner run` as a subprocess against the emulator, the fake and helm."""
