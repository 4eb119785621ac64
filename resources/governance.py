"""The governance ledger and the promotion policy, as one resource."""

from pathlib import Path

import dagster as dg

from resources.storage import absolute_sqlite_url

from riskcore.gates import DEFAULT_PROMOTION_POLICY, PromotionPolicy, load_promotion_policy
from riskcore.ledger import Ledger


class Governance(dg.ConfigurableResource):
    """Local: a SQLite ledger file. Production: PostgreSQL (`RISK_LEDGER_URL`, an EnvVar)."""

    ledger_url: str
    promotion_policy: str = str(DEFAULT_PROMOTION_POLICY.name)

    def ledger(self) -> Ledger:
        return Ledger.from_url(absolute_sqlite_url(self.ledger_url))

    def policy(self) -> PromotionPolicy:
        candidate = Path(self.promotion_policy)
        return load_promotion_policy(candidate if candidate.is_file() else DEFAULT_PROMOTION_POLICY.parent / self.promotion_policy)
