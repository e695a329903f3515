"""What several test folders share: the Kubernetes API emulator, the GitHub fake, and helpers."""
