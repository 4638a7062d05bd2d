"""Rewards and coupons: the catalogue of rewards points buy, the coupons they issue, and the
checkout: what a member pays and earns for a cart, and applying it to an order."""
