"""Webhooks: chain events pushed to the parties who subscribed to them.

The indexer tells `WebhookOutbox` of every event inside its own transaction, and the outbox
queues one delivery row per matching subscription there (the outbox pattern: an event is
stored if and only if its deliveries are). The `Dispatcher` then sends due deliveries,
signed with the subscription's secret, retrying with backoff until the receiver answers 2xx
or the attempts run out (the dead-letter list). Delivery is at least once: receivers
deduplicate by the `Idempotency-Key` header, which is the same for every attempt.
"""
