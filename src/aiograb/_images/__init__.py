"""The CPU stage: the image pipeline, its worker processes, image work, dataset outputs."""
