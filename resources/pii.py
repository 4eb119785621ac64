"""The PII token key, from the environment only."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from riskcore.pii import DEVELOPMENT_TOKEN_KEY, tokenise


class PiiTokeniser(dg.ConfigurableResource):
    """Keyed-hash tokens; `key` is always an EnvVar so the secret never sits in config or the UI."""

    key: str

    @property
    def uses_development_key(self) -> bool:
        return self.key == DEVELOPMENT_TOKEN_KEY

    def tokenise(self, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        return tokenise(frame, columns, self.key)
