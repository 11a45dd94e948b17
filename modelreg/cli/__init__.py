"""The click CLI: parse, call one API function, format. No business rules here."""
