"""The PII token keys, from the environment only: the current key makes every token, previous
keys (during a rotation) only match tokens made before."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    import pandas as pd

# Locally only, and labelled as such in every ingestion's metadata. Production refuses it.
DEVELOPMENT_TOKEN_KEY = "development-only-pii-token-key-not-a-secret"
PII_KEY_VAR = "RISK_PII_TOKEN_KEY"
PII_PREVIOUS_KEYS_VAR = "RISK_PII_TOKEN_KEY_PREVIOUS"  # comma-separated, newest first; optional
MIN_KEY_BYTES = 32  # riskcore.pii.MIN_KEY_BYTES (not imported: it brings pandas, which the code location never loads)


class PiiKeyRefused(ValueError):
    """The token key is not fit for production. The message names the variable, never the key."""


class PiiTokeniser(dg.ConfigurableResource):
    """Keyed-hash tokens; `key` is always an EnvVar so the secret never sits in config or the UI.

    `previous_keys`: the keys used before a rotation (comma-separated), never to make a token, only
    to give a clear value's tokens under every known key (`tokens_of`, `matches`).
    `production`: refuse, when a run sets the resource up (before any asset writes), the
    development key and any key shorter than 32 bytes."""

    key: str
    previous_keys: str | None = None
    production: bool = False

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        problem = self.key_problem()
        if problem:
            raise PiiKeyRefused(problem)

    def key_problem(self) -> str | None:
        """Why production refuses the current key (None: accepted); locally every non-empty key is accepted."""
        if not self.key:
            return f"{PII_KEY_VAR} is empty: set it to a secret of at least {MIN_KEY_BYTES} bytes (`make rotate-pii-key` generates one)"
        if not self.production:
            return None
        if self.uses_development_key:
            return (
                f"{PII_KEY_VAR} holds the development key, which production refuses: set it to a secret of at least "
                f"{MIN_KEY_BYTES} bytes (`make rotate-pii-key` generates one)"
            )
        if len(self.key.encode()) < MIN_KEY_BYTES:
            return f"{PII_KEY_VAR} is shorter than {MIN_KEY_BYTES} bytes, which production refuses (`make rotate-pii-key` generates a key)"
        return None

    @property
    def uses_development_key(self) -> bool:
        return self.key == DEVELOPMENT_TOKEN_KEY

    @property
    def key_id(self) -> str:
        """The id every token made now carries (`tok_<key id>_...`)."""
        from riskcore.pii import key_id

        return key_id(self.key)

    def previous(self) -> list[str]:
        """The previous keys, newest first, without blanks, repeats or the current key."""
        keys: list[str] = []
        for item in (self.previous_keys or "").split(","):
            item = item.strip()
            if item and item != self.key and item not in keys:
                keys.append(item)
        return keys

    def known_keys(self) -> list[str]:
        """Every known key, the current one first."""
        return [self.key, *self.previous()]

    def key_ids(self) -> list[str]:
        """Every known key's id, the current one first."""
        from riskcore.pii import key_id

        return [key_id(k) for k in self.known_keys()]

    def tokens_of(self, value: str, column: str) -> dict[str, str]:
        """A clear value's token under every known key, by key id: what matches it in data
        tokenised before and after a rotation."""
        from riskcore.pii import tokens_under_keys

        return tokens_under_keys(value, self.known_keys(), column)

    def tokens_of_column(self, values: pd.Series, column: str) -> dict[str, pd.Series]:
        """A column's tokens under every known key, by key id (for joins across a rotation)."""
        from riskcore.pii import key_id, tokenise_column

        return {key_id(k): tokenise_column(values, k, column) for k in self.known_keys()}

    def matches(self, stored: str, value: str, column: str) -> bool:
        """Whether a stored token is this clear value's, under any known key (also a token from
        before key ids)."""
        from riskcore.pii import same_token

        return any(same_token(stored, made) for made in self.tokens_of(value, column).values())
