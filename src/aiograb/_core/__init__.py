"""The core: models, config, errors, URLs, content types, clock, loop. No I/O, no aiohttp."""
