"""Guide: Troubleshooting / Debugging: enable debug logging."""
# ruff: noqa: I001  (the guide's snippet, kept verbatim)

import logging
logging.basicConfig(level=logging.DEBUG)

logging.getLogger("otel_botmon").debug("otel_botmon debug logging is on")
