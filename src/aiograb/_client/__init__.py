"""``open_client``: bounded, retried, deadline-aware HTTP fan-out for services."""
