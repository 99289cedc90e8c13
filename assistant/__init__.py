"""A grounded chat assistant on U.S.-South Korea coordination on North Korea."""

from assistant.app import Assistant
from assistant.chain import Answer, Sources
from assistant.citations import Citation
from assistant.config import Settings
from assistant.retrieval import Filters

__all__ = ["Answer", "Assistant", "Citation", "Filters", "Settings", "Sources"]
