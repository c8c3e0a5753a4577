"""The patrol-sync client SDK (see issue: SDK)."""
