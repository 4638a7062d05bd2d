"""Loyalty: the points ledger, the program's rules, tiers, paid membership, rewards and coupons,
and referrals.

Other code calls ``loyalty.service`` (the verbs and reads) and reads ``loyalty.events`` (the
typed events this domain appends). Everything else is private to the domain, split by concept:
``ledger/`` (accounts, journal, lots, movements), ``program/`` (configuration versions, earning
rules, simulator), ``earning/`` (the earning processor and awards), ``tiers/``,
``membership/`` (plans, lifecycle, value, analytics, announcements), ``rewards/`` (catalogue,
coupons, the checkout and applying it to an order) and ``referrals/``. ``api``, ``admin``,
``tasks``, ``models`` and ``schemas`` are the mount points the application composes.
"""
