"""The points ledger: member accounts, the double-entry journal, lots used first in first out,
debt, expiry, returns, and the reads and checks over them.

Private to the loyalty domain: other code reaches it through ``rapport.loyalty.service``.
"""
