"""Analytics: figures across domains (the admin overview), read only through each domain's
service functions."""
