"""Earning: points from the event log (the earning processor), the awards it makes through the
earning rules, and the daily birthday bonus."""
