"""helm: the helm process and its lifetime, values merging, probes."""
