"""Feedback: surveys (NPS, CSAT, CES), reviews and their screening, support tickets."""
