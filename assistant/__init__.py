"""A grounded chat assistant on U.S.-South Korea coordination on North Korea."""

from assistant.app import Assistant
from assistant.config import Settings

__all__ = ["Assistant", "Settings"]
