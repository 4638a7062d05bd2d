"""Orders from every channel, fulfilment, delivery promises, returns and return risk."""
