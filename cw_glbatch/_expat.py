"""Expat as both readers use it: guarded by defusedxml, and its errors told in plain words.

`guarded_parser` is the only way the readers make a parser, so the full reader and its fast path
refuse exactly the same things: a DTD, entity declarations, external references.
"""

from __future__ import annotations

import pyexpat
from collections.abc import Sequence
from pyexpat import errors as expat_errors

from defusedxml.ElementTree import DefusedXMLParser

__all__ = ["DTD_REFUSED", "explain", "guarded_parser"]

DTD_REFUSED = (
    "<!DOCTYPE> and entity declarations are refused: they allow entity expansion "
    "and external references. Remove the DOCTYPE."
)
_GUARD = DefusedXMLParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)


def guarded_parser() -> pyexpat.XMLParserType:
    """A new expat parser that raises `DefusedXmlException` on a DTD or an entity declaration."""
    parser = pyexpat.ParserCreate()
    parser.StartDoctypeDeclHandler = _GUARD.defused_start_doctype_decl
    parser.EntityDeclHandler = _GUARD.defused_entity_decl
    parser.UnparsedEntityDeclHandler = _GUARD.defused_unparsed_entity_decl
    # It raises, never returns; typeshed wants the int expat's C callback would return.
    parser.ExternalEntityRefHandler = _GUARD.defused_external_entity_ref_handler  # type: ignore[assignment]
    return parser


def explain(
    code: int, *, open_elements: Sequence[tuple[str, int]], started: bool, closed_at: int
) -> str:
    """A readable reason for an expat error.

    Args:
        code: The `pyexpat.ExpatError`'s code.
        open_elements: The elements open where it happened, outermost first: (name, line).
        started: Whether the root element had started.
        closed_at: The line where the root element closed, if it had.
    """
    if not started and code == expat_errors.codes[expat_errors.XML_ERROR_NO_ELEMENTS]:
        return "the file holds no XML element: expected a <Batches> document."
    if open_elements and code in _TRUNCATED:
        name, line = open_elements[-1]
        return (
            f"the file ends before <{name}> (opened at line {line}) is closed; "
            "it may be truncated or a closing tag may be missing."
        )
    if code == expat_errors.codes[expat_errors.XML_ERROR_TAG_MISMATCH]:
        name, line = open_elements[-1]
        return f"this closing tag does not match <{name}> opened at line {line}."
    if code == expat_errors.codes[expat_errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT]:
        return f"there is more after </Batches> closed the document at line {closed_at}."
    what = expat_errors.messages[code]
    if not what.startswith("not well-formed"):
        what = f"not well-formed XML: {what}"
    return f"{what}.{_HINTS.get(code, '')}"


_TRUNCATED = frozenset(
    expat_errors.codes[name]
    for name in (
        expat_errors.XML_ERROR_NO_ELEMENTS,
        expat_errors.XML_ERROR_UNCLOSED_TOKEN,
        expat_errors.XML_ERROR_PARTIAL_CHAR,
        expat_errors.XML_ERROR_UNCLOSED_CDATA_SECTION,
    )
)
_HINTS = {
    expat_errors.codes[expat_errors.XML_ERROR_INVALID_TOKEN]: (
        " A '<' or '&' in a value must be written &lt; or &amp;; binary data is not XML."
    ),
    expat_errors.codes[expat_errors.XML_ERROR_UNDEFINED_ENTITY]: (
        " Only &amp; &lt; &gt; &quot; &apos; and numeric character references are allowed."
    ),
    expat_errors.codes[expat_errors.XML_ERROR_UNKNOWN_ENCODING]: " Save the file as UTF-8.",
    expat_errors.codes[expat_errors.XML_ERROR_INCORRECT_ENCODING]: (
        " The bytes do not match the encoding the XML declaration names; save the file as UTF-8."
    ),
}
