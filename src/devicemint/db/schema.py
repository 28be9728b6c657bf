"""The whole schema: every domain's tables, for migrations and the schema check.

Domains keep their tables in their own `models` module (on the one `Base` of
`devicemint.db.models`); importing them here registers them with that Base.
"""

import devicemint.auth.models  # noqa: F401  registers the auth tables
import devicemint.indexer.models  # noqa: F401  registers the chain events and projections
import devicemint.licensing.models  # noqa: F401  registers the committee mirror
import devicemint.onboarding.models  # noqa: F401  registers the onboarding tables
import devicemint.pki.models  # noqa: F401  registers the CA certificates, revocations and CRLs
import devicemint.webhooks.models  # noqa: F401  registers the webhook subscriptions and deliveries
from devicemint.db.models import Base

metadata = Base.metadata
