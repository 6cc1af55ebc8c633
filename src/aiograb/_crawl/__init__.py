"""``crawl``: scope, robots, extraction, frontier policy, the crawl handler, the public API."""
