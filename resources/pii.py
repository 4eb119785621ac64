"""The PII token key, from the environment only."""

from __future__ import annotations

import dagster as dg

# Locally only, and labelled as such in every ingestion's metadata.
DEVELOPMENT_TOKEN_KEY = "development-only-pii-token-key-not-a-secret"


class PiiTokeniser(dg.ConfigurableResource):
    """Keyed-hash tokens; `key` is always an EnvVar so the secret never sits in config or the UI."""

    key: str

    @property
    def uses_development_key(self) -> bool:
        return self.key == DEVELOPMENT_TOKEN_KEY
