"""Fetching one URL: sans-IO rules (redirects, retries, limits), politeness, fetchers."""
