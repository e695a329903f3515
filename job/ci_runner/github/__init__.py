"""GitHub: the one request path (auth, ETags, retries, rate limits), App auth, answers, probes."""
