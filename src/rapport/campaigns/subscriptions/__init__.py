"""Webhook subscriptions to Rapport's own events (points earned, a tier change, a late order,
an erased customer ...): what an endpoint subscribed to (``managing``), the processor that
turns each matching logged event into one signed webhook delivery per subscription
(``processor``), its API and admin page. Deliveries go through the delivery part's webhook
channel: signed, retried with backoff, ``dead`` after the endpoint's tries, replayable."""
