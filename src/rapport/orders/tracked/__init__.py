"""Orders from tracking: Segment's E-commerce spec v2 ("Order Completed", "Order Refunded") as
Rapport orders and returns, through the domain's own verbs.

- ``mapping``: a message's properties as an order or a return (money in minor units by the
  currency's exponent, totals checked), or the reason it cannot be one;
- ``processor``: the event processor ``orders.tracked`` that applies them, once each;
- ``outcomes``: what became of each handled message (each is handled once), the refusals
  among them kept for the operator;
- ``api``: the admin endpoint listing the refusals.
"""
