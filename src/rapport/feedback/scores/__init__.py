"""Scores: the arithmetic of NPS, CSAT and CES, reports over the stored answers (breakdowns,
trends, moments of truth, comment themes), and targets with their alerts."""
