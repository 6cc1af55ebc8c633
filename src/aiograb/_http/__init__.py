"""The single seam to HTTP clients: the Transport protocol and its implementations."""
