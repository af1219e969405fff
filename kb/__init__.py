"""renewal-kb: a Chinese knowledge base for telecom licence renewal (续证助手)."""

__version__ = "0.1.0"

from kb.engine import KnowledgeBase  # noqa: E402
from kb.types import Chunk, Document, Hit, SearchFilters, Source  # noqa: E402

__all__ = ["KnowledgeBase", "Chunk", "Document", "Hit", "SearchFilters", "Source", "__version__"]
