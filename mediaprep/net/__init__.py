"""Network access: fetching URL inputs (only when the caller allows it)."""
