"""Other domains' facts that become messages, as campaigns: the late-delivery notice, the
survey invitation, the apology for points added, the CX-target alert to staff, and member
announcements (early access to sales included).

The lower domains only append their typed events (``delivery_late``, ``survey_invited``,
``ticket_resolved``, ``points_earned``, ``score_below_target``, ``announcement_published``);
the ``campaigns.producers`` processor (:mod:`.processor`) turns each into deliveries of a
system campaign (:mod:`.messages`: found by key, created on first use with default templates
the retailer may edit), which the delivery part sends with its gates checked at send time.
``jobs`` registers the processor, the announcement job and the follow-up schedules.
"""
