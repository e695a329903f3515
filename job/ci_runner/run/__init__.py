"""One run: the pure plan, the cycle that carries it out, and the commands built on them."""
