"""What reading a document produces and the limits it reads under, shared by the readers of each format
(``readers``, ``pdf_text``, ``docx_text``) so that none of them imports another's module.

    from assistant.documents.sections import DocumentLimits, Section
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.core.errors import InputError


@dataclass(frozen=True)
class Section:
    """A run of text from one place in a document."""

    text: str
    page: int | None = None
    """1-based page number (PDF only)."""
    heading: str = ""
    """The heading path it falls under ("Install > On Windows"), empty when the document has none."""


@dataclass
class DocumentLimits:
    max_bytes: int = 50 * 1024 * 1024
    """Largest document accepted (the app sets it from --max-upload-mb)."""
    max_pages: int = 2000
    """PDF pages read at most."""
    max_chars: int = 5_000_000
    """Text kept from one document; a longer one is refused (split it)."""

    def __post_init__(self):
        for name in ("max_bytes", "max_pages", "max_chars"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"DocumentLimits.{name} must be at least 1; got {getattr(self, name)}.")


def too_much_text(name: str, max_chars: int) -> InputError:
    return InputError(f"'{name}' holds more than {max_chars:,} characters of text; split it into smaller files.")
