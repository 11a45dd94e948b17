"""Plain dataclasses and enums of the registry's domain. No I/O here."""
